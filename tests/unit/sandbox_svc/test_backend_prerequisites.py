"""The local backend refuses to start, naming the fix, when isolation is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.local.backend import LocalBackend


def test_missing_bwrap_refuses_and_names_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, no setpriv on this PATH
    with pytest.raises(IsolationUnavailableError, match="apt-get install -y bubblewrap"):
        LocalBackend.for_host(tmp_path / "state")
