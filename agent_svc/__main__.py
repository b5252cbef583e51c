"""``python -m agent_svc``: serve an AgentApp, or run its Celery task worker.

    python -m agent_svc --app my_agent:app [--host H] [--port P] [--grpc-port G]
    python -m agent_svc --worker --app my_agent:app      # needs SANDGATE_TASK_BROKER

``sandgate agent-server`` and ``sandgate agent-worker`` are the same commands.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from agent_svc.settings import AgentSettings

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options shared by ``sandgate agent-server`` and ``agent-worker``."""
    parser.add_argument("--app", help="the AgentApp to serve, as module:attribute "
                        "(default $SANDGATE_AGENT_APP)")
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
    settings = settings.model_copy(update=update)
    if not settings.app:
        raise ValueError("name the app to serve: --app module:attribute or SANDGATE_AGENT_APP")
    return settings


def run(args: argparse.Namespace, worker: bool) -> int:
    """Serve (or, with ``worker``, run the Celery worker of) the app ``args`` name.

    Raises:
        ValueError: no app named, a malformed one, or a worker without a broker.
        FileNotFoundError: the config file does not exist.
        ImportError: the app's module cannot be imported.
    """
    from agent_svc.server import load_app

    settings = _settings(args)
    app = load_app(settings.app)
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
