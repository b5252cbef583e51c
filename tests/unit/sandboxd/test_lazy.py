from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox_svc.sandboxd.lazy import Lazy


def test_a_lazy_value_is_made_once_on_first_use() -> None:
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    lazy = Lazy(make)
    assert lazy.peek() is None and made == []
    assert lazy.get() == 1 and lazy.get() == 1
    assert made == [1] and lazy.peek() == 1


def test_a_failed_make_is_tried_again_on_the_next_use() -> None:
    attempts: list[int] = []

    def make() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise OSError("not yet")
        return "ok"

    lazy = Lazy(make)
    with pytest.raises(OSError):
        lazy.get()
    assert lazy.peek() is None
    assert lazy.get() == "ok"


def test_a_lazy_of_a_value_holds_it_already() -> None:
    assert Lazy.of("v").peek() == "v"


def test_sandboxd_start_up_loads_no_files_kernel_or_browser_machinery() -> None:
    probe = ("import json, sys; import sandbox_svc.sandboxd.__main__, sandbox_svc.sandboxd.server;"
             " print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60, cwd=Path(__file__).parents[3]).stdout
    loaded = set(json.loads(out))
    assert "sandbox_svc.sandboxd.exec" in loaded  # the probe saw the daemon's imports
    for module in ("sandbox_svc.sandboxd.files", "sandbox_svc.sandboxd.search",
                   "sandbox_svc.sandboxd.kernel", "sandbox_svc.sandboxd.browser.session",
                   "jupyter_client", "playwright", "psutil"):
        assert module not in loaded, f"{module} is imported at start-up, not on first use"
