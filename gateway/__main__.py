"""``python -m gateway [--config custom.env]``: run the tool gateway alone.

It needs a running sandbox_svc (``SANDGATE_SANDBOX_TARGET``); ``sandgate up``
starts both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from pathlib import Path

from gateway.settings import GatewaySettings
from sandgate.service.logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway",
                                     description="Run Sandgate's tool gateway (MCP and gRPC).")
    parser.add_argument("--config", type=Path, help="env file with SANDGATE_* keys")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes serving MCP HTTP (default $SANDGATE_GATEWAY_WORKERS "
                             "or 1; more than 1 needs SANDGATE_GATEWAY_LEGACY_SESSIONS=false)")
    parser.add_argument("--worker", nargs=2, type=int, metavar=("FD", "PARENT"),
                        help=argparse.SUPPRESS)  # how worker 0 starts the others
    args = parser.parse_args(argv)
    try:
        configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"),
                          os.environ.get(LOG_LEVEL_ENV, "INFO"), environ=os.environ)
    except ValueError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    # These import grpc: after the logging set-up.
    from gateway.server import serve, serve_worker
    from gateway.workers import WorkerExitedError, die_with_parent, read_worker_settings

    try:
        if args.worker:
            fd, parent = args.worker
            die_with_parent(parent)
            settings = read_worker_settings(sys.stdin.buffer.read())
            asyncio.run(serve_worker(settings, socket.socket(fileno=fd)))
            return 0
        settings = GatewaySettings.load(args.config)
        if args.workers is not None:
            settings = GatewaySettings(**{**settings.model_dump(), "workers": args.workers})
        asyncio.run(serve(settings))
    except WorkerExitedError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return 0

if __name__ == "__main__":
    sys.exit(main())
