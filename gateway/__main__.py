"""``python -m gateway [--config custom.env]``: run the tool gateway alone.

It needs a running sandbox_svc (``SANDGATE_SANDBOX_TARGET``); ``sandgate up``
starts both.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from gateway.server import serve
from gateway.settings import GatewaySettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="gateway",
                                     description="Run Sandgate's tool gateway (MCP and gRPC).")
    parser.add_argument("--config", type=Path, help="env file with SANDGATE_* keys")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(GatewaySettings.load(args.config)))
    except (FileNotFoundError, ValueError, OSError) as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
