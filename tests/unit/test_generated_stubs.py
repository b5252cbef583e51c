"""The committed gRPC stubs are exactly what the protos generate."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_protos.py"), "--out",
                    str(tmp_path)], check=True)
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*_pb2*.py*")
                       if "__pycache__" not in p.parts)
    assert generated, "the generator produced nothing"
    drifted = [str(rel) for rel in generated
               if not (ROOT / rel).exists() or not filecmp.cmp(tmp_path / rel, ROOT / rel,
                                                               shallow=False)]
    assert not drifted, f"stubs differ from protos; run `make protos`: {drifted}"
    committed = sorted(p.relative_to(ROOT) for p in (ROOT / "sandgate").rglob("*_pb2*.py*")
                       if "__pycache__" not in p.parts)
    assert committed == generated, "stale generated files without a proto"
