"""``python -m gateway [--config custom.env]``: run the tool gateway alone.

It needs a running sandbox_svc (``SANDGATE_SANDBOX_TARGET``); ``sandgate up``
starts both.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from gateway.settings import GatewaySettings
from sandgate.service.logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway",
                                     description="Run Sandgate's tool gateway (MCP and gRPC).")
    parser.add_argument("--config", type=Path, help="env file with SANDGATE_* keys")
    args = parser.parse_args(argv)
    try:
        configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"),
                          os.environ.get(LOG_LEVEL_ENV, "INFO"), environ=os.environ)
        from gateway.server import serve  # imports grpc: after the logging set-up

        asyncio.run(serve(GatewaySettings.load(args.config)))
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
