"""``python -m agent_svc``: serve an AgentApp, or run its Celery task worker.

    python -m agent_svc [--app my_agent:app] [--host H] [--port P] [--grpc-port G]
    python -m agent_svc --worker --app my_agent:app      # needs SANDGATE_TASK_BROKER

Without ``--app`` (or ``SANDGATE_AGENT_APP``) the server serves the built-in
ReAct agent (:mod:`agent_svc.builtin`) on the gateway's tools.

``sandgate agent-server`` and ``sandgate agent-worker`` are the same commands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from agent_svc.settings import AgentSettings

if TYPE_CHECKING:
    from agent_svc.app import AgentApp

__all__ = ["add_arguments", "main", "resolve_app"]

logger = logging.getLogger("sandgate.agent")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``sandgate agent-server`` and ``agent-worker``."""
    parser.add_argument("--app", help="the AgentApp to serve, as module:attribute "
                        "(default $SANDGATE_AGENT_APP, else the built-in ReAct agent)")
    parser.add_argument("--config", type=Path, help="env file with SANDGATE_* keys")
    parser.add_argument("--host", help="listen address (default $SANDGATE_AGENT_HOST or "
                        "127.0.0.1; without API keys always loopback)")
    parser.add_argument("--port", type=int, help="HTTP port (default $SANDGATE_AGENT_PORT "
                        "or 8090; 0 picks a free one)")
    parser.add_argument("--grpc-port", type=int, help="AgentService gRPC port (default "
                        "$SANDGATE_AGENT_GRPC_PORT or 8003; -1 disables it)")


def _settings(args: argparse.Namespace) -> AgentSettings:
    settings = AgentSettings.load(args.config)
    update: dict[str, object] = {}
    if args.app:
        update["app"] = args.app
    if args.host:
        update["host"] = args.host
    if args.port is not None:
        update["port"] = args.port
    if args.grpc_port is not None:
        update["grpc_port"] = None if args.grpc_port < 0 else args.grpc_port
    return settings.model_copy(update=update)


def resolve_app(settings: AgentSettings, env_file: Path | None = None) -> AgentApp:
    """The app ``settings.app`` names, else the built-in ReAct agent.

    Raises:
        ValueError: a malformed app name, or a built-in agent setting out of range.
        FileNotFoundError: ``env_file`` does not exist.
        ImportError: the app's module cannot be imported.
    """
    if settings.app:
        from agent_svc.server import load_app

        return load_app(settings.app)
    from agent_svc.builtin import build_builtin_app, builtin_settings
    from agent_svc.react.errors import ModelNotConfiguredError

    react = builtin_settings(settings, env_file)
    try:
        react.check_model()
    except ModelNotConfiguredError as exc:
        logger.warning("%s; until then /process answers failed (model_not_configured)", exc)
    return build_builtin_app(react)


def run(args: argparse.Namespace, worker: bool) -> int:
    """Serve (or, with ``worker``, run the Celery worker of) the app ``args`` name.

    Raises:
        ValueError: a malformed app name, a worker without an app or a broker.
        FileNotFoundError: the config file does not exist.
        ImportError: the app's module cannot be imported.
    """
    settings = _settings(args)
    if worker and not settings.app:
        raise ValueError("the worker runs an app's tasks: name the app with --app "
                         "module:attribute or SANDGATE_AGENT_APP (the built-in agent has none)")
    app = resolve_app(settings, args.config)
    if worker:
        if not settings.task_broker:
            raise ValueError("the worker runs Celery tasks: set SANDGATE_TASK_BROKER="
                             "redis://host:port/db (without a broker, tasks run inside "
                             "the agent server)")
        from agent_svc.tasks.celery_runner import run_worker

        run_worker(app.tasks, settings.task_broker, settings.task_backend,
                   settings.task_concurrency)
        return 0
    from agent_svc.server import serve_forever

    return asyncio.run(serve_forever(app, settings))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="agent_svc", description="Serve a Sandgate AgentApp.")
    add_arguments(parser)
    parser.add_argument("--worker", action="store_true",
                        help="run the app's Celery task worker instead of the server")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return run(args, args.worker)
    except (FileNotFoundError, ValueError, ImportError, RuntimeError) as exc:
        print(f"agent_svc: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
