"""The local backend refuses to start, naming the fix, when isolation is missing."""

from __future__ import annotations

import ctypes.util
import sys
from pathlib import Path

import pytest

from sandbox_svc.errors import IsolationUnavailableError
from sandbox_svc.local.backend import LocalBackend


def test_missing_bwrap_refuses_and_names_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap, no setpriv on this PATH
    with pytest.raises(IsolationUnavailableError, match="apt-get install -y bubblewrap"):
        LocalBackend.for_host(tmp_path / "state")


def test_missing_libseccomp_refuses_to_start_and_names_the_package(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Never run sandboxes without their syscall filter: no libseccomp, no backend.
    # pyseccomp looks libseccomp.so.2 up when imported: make it find nothing.
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    monkeypatch.delitem(sys.modules, "pyseccomp", raising=False)
    with pytest.raises(IsolationUnavailableError, match="apt-get install -y libseccomp2"):
        LocalBackend.for_host(tmp_path / "state")
    assert not (tmp_path / "state").exists()
