"""32 MCP sessions that keep working, and the books on what they were promised.

Each session loops: write a file with unique content, read it back, run a shell
command on it. A write whose result is not an error is *acknowledged*; at the
end every acknowledged write must read back unchanged, unless the session was
*told* its sandbox was lost (a failed call saying so, or a later call's note
that it runs in a fresh sandbox). An acknowledged write that is gone without
such a notice is *lost*: the one number that must stay zero.

Every call is recorded with the phase the test was in when it started and
ended, so a test can ask, for example, which calls ran wholly while a service
was down.
"""

from __future__ import annotations

import asyncio
import enum
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp import Client

from gateway.mcp_server import SANDBOX_META
from tests.integration.gateway.conftest import mcp_client

__all__ = ["Call", "FaultCounts", "Fleet", "Outcome", "Phases", "Session"]

LOST_MARK = "stopped during the call"
"""What a call that failed because its sandbox died says (gateway.calls)."""
FRESH_MARK = "previous sandbox had stopped"
"""The note on the first call that runs in a replacement sandbox (gateway.calls)."""
CALL_TIMEOUT_S = 60.0
_VERIFY_BATCH = 40


class Outcome(enum.Enum):
    OK = "ok"
    TOLD_LOST = "told: sandbox lost"
    RETRYABLE = "retryable error"
    TOOL_ERROR = "other tool error"
    TRANSPORT = "transport error"
    TIMEOUT = "timed out"
    MISMATCH = "read back other content"


class Phases:
    """The phase a test is in (``steady``, ``outage``, ...), stamped on every call."""

    def __init__(self, first: str = "steady") -> None:
        self._current = first
        self._started = time.monotonic()
        self.log = [(0.0, first)]
        """(seconds since the first phase, phase) for each change, to read on failure."""

    @property
    def current(self) -> str:
        return self._current

    @current.setter
    def current(self, phase: str) -> None:
        self._current = phase
        self.log.append((round(time.monotonic() - self._started, 1), phase))


@dataclass(frozen=True)
class Call:
    session: str
    tool: str
    outcome: Outcome
    started_in: str
    ended_in: str
    text: str = ""
    sandbox: str = ""
    fresh: bool = False
    """The result carried the note that a fresh sandbox replaced a lost one."""

    @property
    def told(self) -> bool:
        """The call said the session's sandbox was lost (it failed, or ran in a fresh one)."""
        return self.outcome is Outcome.TOLD_LOST or self.fresh

    @property
    def within(self) -> str | None:
        """The phase the call ran in from start to end, None if it spanned two."""
        return self.started_in if self.started_in == self.ended_in else None


def _why(exc: BaseException) -> str:
    """The innermost causes of a client failure (exception groups unwrapped), for reports."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_why(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"[:300]


def _text(result: types.CallToolResult) -> str:
    return "\n".join(b.text for b in result.content if isinstance(b, types.TextContent))


def _timed_out(exc: BaseException) -> bool:
    """A call timed out, though the client's task group may have wrapped the error."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_timed_out(inner) for inner in exc.exceptions)
    return isinstance(exc, TimeoutError)


def _classify(result: types.CallToolResult) -> Outcome:
    text = _text(result)
    if not result.is_error:
        return Outcome.OK
    if LOST_MARK in text:
        return Outcome.TOLD_LOST
    if "retry" in text.lower():
        return Outcome.RETRYABLE
    return Outcome.TOOL_ERROR


@dataclass
class Session:
    """One MCP session (``X-Sandgate-Session: name``) and what it was promised."""

    name: str
    url: str
    phases: Phases
    acked: dict[str, tuple[str, str]] = field(default_factory=dict)
    """path -> (content, sandbox it was written in), for writes still owed."""
    acknowledged: int = 0
    excused: int = 0
    """Acknowledged writes given up because the session was told its sandbox was lost."""
    notices: int = 0
    silent_changes: int = 0
    """Times the session's sandbox changed without a notice (must stay 0)."""
    sandbox: str = ""
    rounds: int = 0
    calls: list[Call] = field(default_factory=list)

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Sandgate-Session": self.name}

    async def call(self, client: Client, tool: str, arguments: Mapping[str, Any]) -> Call:
        """Call a tool and record the outcome; transport failures propagate."""
        started = self.phases.current
        with anyio.fail_after(CALL_TIMEOUT_S):
            result = await client.call_tool(tool, dict(arguments))
        text = _text(result)
        call = Call(self.name, tool, _classify(result), started, self.phases.current, text,
                    str((result.meta or {}).get(SANDBOX_META, "")), FRESH_MARK in text)
        self._observe(call)
        return call

    def _observe(self, call: Call) -> None:
        self.calls.append(call)
        if call.outcome is Outcome.TOLD_LOST:
            self.notices += 1
            self._excuse(lambda sandbox: sandbox == call.sandbox)
        elif call.fresh:
            self.notices += 1
            self._excuse(lambda sandbox: sandbox != call.sandbox)
        elif call.sandbox and self.sandbox and call.sandbox != self.sandbox:
            self.silent_changes += 1
        if call.sandbox and call.outcome is not Outcome.TOLD_LOST:
            self.sandbox = call.sandbox

    def _excuse(self, lost: Callable[[str], bool]) -> None:
        gone = [path for path, (_, sandbox) in self.acked.items() if lost(sandbox)]
        for path in gone:
            del self.acked[path]
        self.excused += len(gone)

    def _failed(self, tool: str, outcome: Outcome, started: str, why: str = "") -> None:
        self.calls.append(Call(self.name, tool, outcome, started, self.phases.current, why))

    async def round(self) -> None:
        """Write, read back, run: one MCP client for the round (a new one after a failure)."""
        number = self.rounds + 1
        path, content = f"acked/{number}.txt", f"{self.name} {number} {secrets.token_hex(6)}"
        tool, started = "connect", self.phases.current
        try:
            async with mcp_client(self.url, self.headers) as client:
                tool, started = "write_file", self.phases.current
                wrote = await self.call(client, tool, {"path": path, "content": content})
                if wrote.outcome is not Outcome.OK:
                    return
                self.acked[path] = (content, wrote.sandbox)
                self.acknowledged += 1
                tool, started = "read_file", self.phases.current
                read = await self.call(client, tool, {"path": path})
                if read.told:
                    return  # the write is gone with its sandbox, and the session knows
                if read.outcome is Outcome.OK and read.text != content:
                    self._failed("read_file", Outcome.MISMATCH, started)
                tool, started = "run_shell_command", self.phases.current
                await self.call(client, tool, {"command": f"wc -c < {path}"})
        except Exception as exc:  # every failure is recorded, then judged by the test
            if _timed_out(exc):
                self._failed(tool, Outcome.TIMEOUT, started)
            else:  # the gateway went away: connection refused, reset, ...
                self._failed(tool, Outcome.TRANSPORT, started, _why(exc))
                await asyncio.sleep(0.2)  # do not spin while it is down
        finally:
            self.rounds = number

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.round()
            await asyncio.sleep(0.02)

    async def verify(self) -> tuple[int, int]:
        """(verified, lost): read every write still owed back through the gateway."""
        owed = list(self.acked.items())
        verified = 0
        async with mcp_client(self.url, self.headers) as client:
            for start in range(0, len(owed), _VERIFY_BATCH):
                batch = owed[start:start + _VERIFY_BATCH]
                with anyio.fail_after(CALL_TIMEOUT_S):
                    result = await client.call_tool(
                        "read_multiple_files", {"paths": [path for path, _ in batch]})
                text = _text(result)
                verified += sum(f"{path}:\n{content}\n" in text for path, (content, _) in batch)
        return verified, len(owed) - verified


@dataclass(frozen=True)
class FaultCounts:
    """What one fault scenario did to the sessions' writes."""

    scenario: str
    sessions: int
    acknowledged: int
    verified: int
    lost: int
    told_sessions: int
    told_writes: int
    """Acknowledged writes the sessions were told they lost."""
    silent_changes: int
    failures: Mapping[str, int]

    def line(self) -> str:
        failures = ", ".join(f"{k} {v}" for k, v in sorted(self.failures.items())) or "none"
        return (f"{self.scenario}: {self.sessions} sessions, acknowledged {self.acknowledged}, "
                f"lost {self.lost}, told {self.told_writes} (in {self.told_sessions} sessions), "
                f"verified {self.verified}, silent sandbox changes {self.silent_changes}; "
                f"failed calls: {failures}")


class Fleet:
    """Sessions looping on the gateway until stopped."""

    def __init__(self, url: str, names: Iterable[str], phases: Phases) -> None:
        self.phases = phases
        self.sessions = {name: Session(name, url, phases) for name in names}
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    async def bind(self, *, batch: int = 8, timeout: float = 180.0) -> None:
        """Give every session its sandbox, a batch at a time, before the loops start.

        A storm of cold starts on two busy cores can outlast the start timeout (the
        sessions are then told to retry); the faults under test come after it.
        """
        async def bound(session: Session) -> None:
            while not session.acknowledged:
                await session.round()

        pending = list(self.sessions.values())
        async with asyncio.timeout(timeout):
            for start in range(0, len(pending), batch):
                await asyncio.gather(*(bound(s) for s in pending[start:start + batch]))

    def start(self) -> None:
        self._tasks = [asyncio.create_task(s.run(self._stop), name=f"session-{s.name}")
                       for s in self.sessions.values()]

    async def rounds(self, count: int, *, timeout: float = 120.0,
                     skip: Iterable[str] = ()) -> None:
        """Wait until every session (but ``skip``) has done ``count`` more rounds."""
        skipped = set(skip)
        goal = {n: s.rounds + count for n, s in self.sessions.items() if n not in skipped}
        async with asyncio.timeout(timeout):
            while any(self.sessions[n].rounds < g for n, g in goal.items()):
                await asyncio.sleep(0.05)

    async def stop(self) -> None:
        """Let every session finish its round; a session stuck past that is cancelled."""
        self._stop.set()
        try:
            async with asyncio.timeout(3 * CALL_TIMEOUT_S + 10):
                await asyncio.gather(*self._tasks)
        except TimeoutError:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            raise

    def calls(self) -> list[Call]:
        return [c for s in self.sessions.values() for c in s.calls]

    def failed(self, *, outside: Iterable[str] = ()) -> list[Call]:
        """Failed calls, but those that started in one of the ``outside`` phases."""
        skipped = set(outside)
        return [c for c in self.calls()
                if c.outcome is not Outcome.OK and c.started_in not in skipped]

    def describe(self, calls: Iterable[Call]) -> str:
        """Calls grouped by phase, outcome and message, for an assertion message."""
        seen = Counter((c.started_in, c.ended_in, c.tool, c.outcome.value, c.text[:160])
                       for c in calls)
        lines = [f"{n} x {key}" for key, n in seen.most_common(12)]
        return "\n".join([f"phases: {self.phases.log}", *lines])

    async def counts(self, scenario: str) -> FaultCounts:
        """Verify every owed write and total the books."""
        results = await asyncio.gather(*(s.verify() for s in self.sessions.values()))
        sessions = list(self.sessions.values())
        failures = Counter(c.outcome.value + (" after a fresh-sandbox notice" if c.fresh else "")
                           for c in self.calls() if c.outcome is not Outcome.OK)
        return FaultCounts(
            scenario=scenario, sessions=len(sessions),
            acknowledged=sum(s.acknowledged for s in sessions),
            verified=sum(v for v, _ in results), lost=sum(lost for _, lost in results),
            told_sessions=sum(1 for s in sessions if s.notices),
            told_writes=sum(s.excused for s in sessions),
            silent_changes=sum(s.silent_changes for s in sessions), failures=dict(failures))
