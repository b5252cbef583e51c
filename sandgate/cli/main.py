"""The ``sandgate`` command line.

    sandgate up                         start every Sandgate service in the foreground
    sandgate mcp [--session ID]         serve the sandbox tools as MCP over stdio (for IDEs)
    sandgate sandbox-server [--config]  run only the sandbox control plane
    sandgate gateway-server [--config]  run only the tool gateway (MCP and ToolGateway gRPC)
    sandgate agent-server [--app m:app] serve an AgentApp (/process on 8090, gRPC on 8003);
                                        the built-in ReAct agent without --app
    sandgate agent-worker --app mod:app run the app's Celery task worker
    sandgate sandbox create|ls|templates|exec|rm|pause|resume
    sandgate gc [--dry-run] [--state-dir DIR]   remove what no running Sandgate owns
    sandgate bench                      print the benchmark JSON
    sandgate deploy --overlay kind|ack|acs [--image-registry REG] [--dry-run]
                                        render, apply and wait for a Kubernetes overlay
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

__all__ = ["main"]


def _add_client_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", help="SandboxService address (default $SANDGATE_TARGET "
                        "or 127.0.0.1:8002)")
    parser.add_argument("--api-key", help="API key (default $SANDGATE_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sandgate",
        description="Sandgate: secure sandboxes (shell, Python, files) served as MCP tools "
                    "and over gRPC.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="start all services with embedded defaults (foreground)")
    up.add_argument("--config", type=Path, help="env file (SANDGATE_* or AgentScope keys)")

    mcp = sub.add_parser(
        "mcp", help="serve the sandbox tools as an MCP server on stdin/stdout (for IDEs)",
        description="Serve Sandgate's tools over MCP stdio. Uses the SandboxService at "
                    "--target (a running `sandgate up`) when one answers there, else starts "
                    "a private one for this process.")
    mcp.add_argument("--config", type=Path, help="env file (SANDGATE_* keys)")
    mcp.add_argument("--target", help="SandboxService address (default $SANDGATE_SANDBOX_TARGET "
                     "or 127.0.0.1:8002)")
    mcp.add_argument("--api-key", help="key for that SandboxService (default "
                     "$SANDGATE_SANDBOX_KEY or $SANDGATE_BEARER_TOKEN)")
    mcp.add_argument("--session", default="local",
                     help="session whose sandbox the tools use (default: local)")
    mcp.add_argument("--user", default="", help="end-user id inside the tenant")
    mcp.add_argument("--embedded", action="store_true",
                     help="always start a private SandboxService, even if one answers")

    server = sub.add_parser("sandbox-server", help="run only SandboxService (control plane)")
    server.add_argument("--config", type=Path, help="env file (SANDGATE_* or AgentScope keys "
                        "such as PORT, POOL_SIZE, DEFAULT_SANDBOX_TYPE, BEARER_TOKEN)")

    gateway = sub.add_parser("gateway-server",
                             help="run only the tool gateway (MCP HTTP and ToolGateway gRPC)")
    gateway.add_argument("--config", type=Path, help="env file with SANDGATE_* keys")
    gateway.add_argument("--workers", type=int, metavar="N",
                         help="processes serving MCP HTTP (default $SANDGATE_GATEWAY_WORKERS "
                              "or 1)")

    from agent_svc.__main__ import add_arguments as add_agent_arguments

    agent = sub.add_parser(
        "agent-server", help="serve an AgentApp: /process (SSE), probes, tasks, AgentService",
        description="Serve an AgentApp over HTTP (/process, custom endpoints, tasks) and "
                    "gRPC (sandgate.agent.v1.AgentService).")
    add_agent_arguments(agent)
    worker = sub.add_parser(
        "agent-worker", help="run an AgentApp's Celery task worker (SANDGATE_TASK_BROKER)")
    add_agent_arguments(worker)

    sandbox = sub.add_parser("sandbox", help="manage sandboxes on a running server")
    ssub = sandbox.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = ssub.add_parser(
        "create", help="create a sandbox and print its id (its isolation goes to stderr)")
    create.add_argument("--template", default="", help="template name (default: server's)")
    create.add_argument("--ttl", type=float, help="time to live in seconds")
    _add_client_args(create)
    ls = ssub.add_parser("ls", help="list your sandboxes")
    ls.add_argument("--template", default="")
    _add_client_args(ls)
    templates = ssub.add_parser("templates", help="list templates and the isolation they get")
    _add_client_args(templates)
    exe = ssub.add_parser("exec", help="run a shell command in a sandbox")
    exe.add_argument("sandbox_id")
    exe.add_argument("cmd", nargs="+", help="shell command; put it after -- (options first)")
    exe.add_argument("--timeout", type=float, default=60.0)
    _add_client_args(exe)
    for name, text in (("rm", "delete a sandbox"), ("pause", "freeze a sandbox"),
                       ("resume", "thaw a paused sandbox")):
        action = ssub.add_parser(name, help=text)
        action.add_argument("sandbox_id")
        _add_client_args(action)

    gc = sub.add_parser("gc", help="remove sandboxes, cgroups, mounts, processes and state "
                        "dirs that no running Sandgate owns (e.g. after a killed run)")
    gc.add_argument("--dry-run", action="store_true", help="list what would go; remove nothing")
    gc.add_argument("--state-dir", type=Path, action="append", metavar="DIR",
                    help="only this state dir (repeatable; default: every Sandgate instance "
                    "on this host)")

    bench = sub.add_parser("bench", help="run the benchmarks and print one JSON object")
    bench.add_argument("--quick", action="store_true", help="fewer iterations")

    deploy = sub.add_parser(
        "deploy", help="deploy to Kubernetes: render an overlay, apply it, wait",
        description="Render deploy/kustomize/overlays/OVERLAY with kubectl kustomize, "
                    "optionally move Sandgate's images to your registry, apply it with "
                    "kubectl apply --server-side and wait until every Deployment is Available.")
    deploy.add_argument("--overlay", required=True, choices=("kind", "ack", "acs"))
    deploy.add_argument("--image-registry", default="",
                        help="registry (and namespace) holding the sandgate/* images, e.g. "
                             "registry.example/team")
    deploy.add_argument("--dry-run", action="store_true",
                        help="print the YAML that would be applied, apply nothing")
    deploy.add_argument("--kustomize-dir", type=Path, default=Path("deploy/kustomize"))
    deploy.add_argument("--context", default="", help="kubectl context (default: current)")
    deploy.add_argument("--timeout", type=float, default=300.0,
                        help="seconds to wait for the Deployments (default 300)")
    return parser


async def _sandbox_command(args: argparse.Namespace) -> int:
    from sandgate.sdk import AsyncSandbox, SandgateError, TimeoutException

    client = {"target": args.target, "api_key": args.api_key}
    if args.action == "create":
        sbx = await AsyncSandbox.create(args.template, timeout=args.ttl, **client)
        # stdout is the id alone (scripts read it); the isolation is for people.
        print(sbx.sandbox_id, flush=True)
        await sbx.close()
        try:
            templates = {t.name: t for t in await AsyncSandbox.list_templates(**client)}
        except SandgateError as exc:  # the sandbox exists: still a success
            print(f"isolation: unknown ({exc})", file=sys.stderr)
        else:
            if sbx.template in templates:
                print(f"isolation: {templates[sbx.template].isolation.summary()}",
                      file=sys.stderr)
    elif args.action == "templates":
        print(f"{'NAME':<14} {'POOL':<5} TOOLS")
        for template in await AsyncSandbox.list_templates(**client):
            print(f"{template.name:<14} {template.pool_size:<5} {','.join(template.tool_groups)}")
            print(f"  isolation: {template.isolation.summary()}")
    elif args.action == "ls":
        rows = await AsyncSandbox.list(args.template, **client)
        print(f"{'ID':<18} {'TEMPLATE':<12} {'STATE':<8} SESSION")
        for row in rows:
            print(f"{row.sandbox_id:<18} {row.template:<12} {row.state:<8} {row.session_id}")
    else:
        sbx = await AsyncSandbox.connect(args.sandbox_id, **client)
        try:
            if args.action == "exec":
                command = " ".join(args.cmd)
                try:
                    result = await sbx.commands.run(
                        command, timeout=args.timeout,
                        on_stdout=lambda s: print(s, end="", flush=True),
                        on_stderr=lambda s: print(s, end="", file=sys.stderr, flush=True))
                except TimeoutException as exc:
                    if not exc.sandbox_timeout:
                        raise
                    print(f"sandgate: {exc}", file=sys.stderr)
                    return 124  # as timeout(1) does
                return result.exit_code
            if args.action == "rm":
                await sbx.kill()
                return 0
            await (sbx.pause() if args.action == "pause" else sbx.resume())
        finally:
            await sbx.close()
    return 0


def _mcp_command(args: argparse.Namespace) -> int:
    from gateway.settings import GatewaySettings
    from gateway.stdio import run_stdio

    settings = GatewaySettings.load(args.config)
    overrides: dict[str, object] = {}
    if args.target:
        overrides["sandbox_target"] = args.target
    if args.api_key:
        overrides["sandbox_key"] = args.api_key
    asyncio.run(run_stdio(settings.model_copy(update=overrides), config=args.config,
                          session=args.session, user=args.user,
                          embedded=True if args.embedded else None))
    return 0


def _deploy_command(args: argparse.Namespace) -> int:
    from sandgate.cli.deploy import DeployError, DeployOptions, run_deploy

    options = DeployOptions(
        overlay=args.overlay, image_registry=args.image_registry, dry_run=args.dry_run,
        kustomize_dir=args.kustomize_dir, context=args.context, timeout_s=args.timeout)
    try:
        return run_deploy(options)
    except DeployError as exc:
        print(f"sandgate deploy: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from sandgate.service.logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, configure_logging

    try:
        # Logs go to stderr: for `sandgate mcp`, stdout is the protocol.
        configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"),
                          os.environ.get(LOG_LEVEL_ENV, "INFO"), environ=os.environ)
    except ValueError as exc:
        print(f"sandgate: {exc}", file=sys.stderr)
        return 2
    if args.command in ("agent-server", "agent-worker"):
        # Before the other services' imports: an agent-only install has no mcp.
        from agent_svc.__main__ import run as run_agent

        try:
            return run_agent(args, worker=args.command == "agent-worker")
        except (FileNotFoundError, ValueError, ImportError, RuntimeError) as exc:
            print(f"sandgate: {exc}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
    from gateway.errors import GatewayError
    from sandbox_svc.errors import SandboxError
    from sandgate.sdk.errors import SandgateError

    try:
        if args.command == "up":
            from sandgate.cli.up import run_up

            return asyncio.run(run_up(args.config))
        if args.command == "mcp":
            return _mcp_command(args)
        if args.command == "sandbox-server":
            from sandbox_svc.__main__ import main as server_main

            return server_main(["--config", str(args.config)] if args.config else [])
        if args.command == "gateway-server":
            from gateway.__main__ import main as gateway_main

            return gateway_main([*(["--config", str(args.config)] if args.config else []),
                                 *(["--workers", str(args.workers)] if args.workers else [])])
        if args.command == "sandbox":
            return asyncio.run(_sandbox_command(args))
        if args.command == "gc":
            from sandgate.cli.gc import run_gc

            return run_gc(args.state_dir, dry_run=args.dry_run)
        if args.command == "bench":
            from bench.run import main as bench_main

            return bench_main(["--quick"] if args.quick else [])
        if args.command == "deploy":
            return _deploy_command(args)
    except (SandboxError, SandgateError, GatewayError, FileNotFoundError, ValueError,
            OSError, RuntimeError) as exc:
        print(f"sandgate: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
