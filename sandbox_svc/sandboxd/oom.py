"""The sandbox cgroup's OOM-kill counter, as the launcher exposes it.

The control plane binds the sandbox's ``memory.events`` (cgroup v2) or
``memory.oom_control`` (v1) read-only into the sandbox; both carry an
``oom_kill N`` line. A command whose run saw the counter grow and that died of
SIGKILL (or whose shell reported 137) was killed for memory.
"""

from __future__ import annotations

import signal
from pathlib import Path

__all__ = ["OomCounter", "killed_for_memory"]


class OomCounter:
    """Reads ``oom_kill N``; a missing or unreadable file counts as unknown."""

    def __init__(self, path: Path | None) -> None:
        self._path = path

    def read(self) -> int | None:
        """The counter now. A cgroup file: the kernel answers at once, so this is
        read on the event loop (a thread hop per read cost more than the read)."""
        if self._path is None:
            return None
        try:
            text = self._path.read_text()
        except OSError:
            return None
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return None


def killed_for_memory(before: int | None, after: int | None, exit_code: int, sig: int) -> bool:
    """True when an OOM kill happened during the command and it died of one."""
    if before is None or after is None or after <= before:
        return False
    return sig == signal.SIGKILL or exit_code == 128 + signal.SIGKILL
