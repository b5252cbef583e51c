"""``python -m sandbox_svc [--config custom.env]``: run the control plane alone."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from sandbox_svc.errors import SandboxError
from sandbox_svc.settings import SandboxServiceSettings
from sandgate.service.logs import LOG_FORMAT_ENV, LOG_LEVEL_ENV, configure_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="sandbox_svc", description="Run Sandgate's SandboxService (gRPC control plane).")
    parser.add_argument("--config", type=Path,
                        help="env file with SANDGATE_* or AgentScope-style keys (PORT, POOL_SIZE…)")
    args = parser.parse_args(argv)
    try:
        configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"),
                          os.environ.get(LOG_LEVEL_ENV, "INFO"), environ=os.environ)
        from sandbox_svc.server import serve  # imports grpc: after the logging set-up

        settings = SandboxServiceSettings.load(args.config)
        asyncio.run(serve(settings))
    except (SandboxError, ValueError, OSError) as exc:  # OSError: ListenError, lock file
        print(f"sandbox_svc: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
