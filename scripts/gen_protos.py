"""Regenerate the committed gRPC stubs from protos/.

Usage: python scripts/gen_protos.py [--out DIR]

Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py under DIR (default: the repository
root), mirroring protos/. tests/unit/test_generated_stubs.py regenerates into a
temporary directory and fails when the committed files differ.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def proto_files() -> list[Path]:
    return sorted(PROTOS.rglob("*.proto"))


def generate(out: Path) -> None:
    include = str(resources.files("grpc_tools") / "_proto")
    for proto in proto_files():
        rel = proto.relative_to(PROTOS)
        args = [
            "grpc_tools.protoc",
            f"-I{PROTOS}",
            f"-I{include}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            str(rel),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {rel}")
    # Every generated directory is a regular package so mypy and imports agree.
    for proto in proto_files():
        pkg = out / proto.relative_to(PROTOS).parent
        while pkg != out:
            init = pkg / "__init__.py"
            if not init.exists():
                init.write_text("")
            pkg = pkg.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    generate(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
