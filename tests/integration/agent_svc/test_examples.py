"""The pipeline example runs with its one command."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_the_pipeline_example_plans_executes_and_reviews() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipeline" / "app.py"), "What is 6 * 7?"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "[executor] 6 * 7 = 42" in lines
    assert "[reviewer] Review: approved (6 * 7 = 42)" in lines
    assert lines[-1] == "-- response completed"
