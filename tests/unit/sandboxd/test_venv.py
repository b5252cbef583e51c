from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

_PROBE = """
import json, sys
from sandbox_svc.sandboxd.venv import enter_venv
enter_venv()
import grpc
print(json.dumps({"prefix": sys.prefix, "path": sys.path, "grpc": grpc.__file__,
                  "site": "site" in sys.modules and sys.flags.no_site == 0}))
"""


def _probe(tmp_path: Path, *flags: str) -> dict[str, object]:
    (tmp_path / "grpc.py").write_text("raise SystemExit('imported from the working directory')\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8",
           "PYTHONPATH": str(Path(__file__).parents[3]), "HOME": str(tmp_path)}
    out = subprocess.run([sys.executable, *flags, "-c", _PROBE], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=True, timeout=60).stdout
    reply: dict[str, object] = json.loads(out)
    return reply


def test_without_site_the_venv_packages_import_and_the_prefix_is_the_venvs(
        tmp_path: Path) -> None:
    reply = _probe(tmp_path, "-S", "-P")
    assert reply["prefix"] == sys.prefix
    assert str(reply["grpc"]).startswith(sys.prefix)
    assert not reply["site"]


def test_without_site_the_working_directory_is_not_on_the_path(tmp_path: Path) -> None:
    reply = _probe(tmp_path, "-S", "-P")
    assert str(tmp_path) not in reply["path"] and "" not in reply["path"]  # type: ignore[operator]

