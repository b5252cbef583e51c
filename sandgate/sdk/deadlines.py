"""How long the SDK waits: every call has a deadline, even when the caller gives none.

Two clocks, kept apart so a caller can tell them apart:

- the *work's* ``timeout`` (a command, a cell, a browser action), enforced by the
  sandbox, which then answers with a result marked ``timed_out``;
- the *call's* deadline, a client-side backstop: the work's timeout (or the
  server's default of 60 s) plus a slack, or ``request_timeout`` for calls that
  carry no work timeout (control plane, files). When it passes, the call fails
  with DEADLINE_EXCEEDED (``TimeoutException`` without a timed-out result).
"""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

__all__ = [
    "ACQUIRE_TIMEOUT_S",
    "REQUEST_TIMEOUT_S",
    "SERVER_WORK_TIMEOUT_S",
    "duration",
    "work_deadline",
]

REQUEST_TIMEOUT_S = 60.0
"""Default deadline of a call without a work timeout (create, files, pause, ...)."""
ACQUIRE_TIMEOUT_S = 180.0
"""Default deadline of AcquireSandbox, which may wait up to 120 s for a sandbox
another replica is starting for the same session."""
SERVER_WORK_TIMEOUT_S = 60.0
"""What sandboxd gives a command or cell sent without a timeout."""
_SLACK_S = 30.0
"""Beyond the work's timeout: the sandbox's own stop, the drain and the transfer."""


def duration(seconds: float) -> Duration:
    """``seconds`` as a protobuf Duration."""
    value = Duration()
    value.FromNanoseconds(int(seconds * 1e9))
    return value


def work_deadline(timeout: float | None) -> float:
    """The call deadline for work the sandbox bounds by ``timeout`` (None: its default)."""
    return (SERVER_WORK_TIMEOUT_S if timeout is None else timeout) + _SLACK_S
