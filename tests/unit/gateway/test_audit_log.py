"""AuditLog: one JSON line per call, arguments only as a digest."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from gateway_fakes import build_calls, caller

from gateway.audit import AuditEvent, AuditLog, arguments_digest

SECRET_ARGS = {"command": "curl -H 'Authorization: Bearer sk-live-123' https://x"}


def test_a_call_writes_one_line_with_who_what_where_and_how_it_ended(tmp_path: Path) -> None:
    path = tmp_path / "audit" / "calls.jsonl"
    audit = AuditLog.to_file(path)
    audit.record(AuditEvent(tenant="acme", user="u1", session="s1", tool="run_shell_command",
                            transport="mcp-http", outcome="ok", duration_ms=12.345,
                            sandbox="sbx-1", args=arguments_digest(SECRET_ARGS)))
    audit.close()
    (line,) = path.read_text().splitlines()
    record = json.loads(line)
    assert {k: record[k] for k in ("tenant", "user", "session", "tool", "outcome", "sandbox",
                                   "duration_ms")} == {
        "tenant": "acme", "user": "u1", "session": "s1", "tool": "run_shell_command",
        "outcome": "ok", "sandbox": "sbx-1", "duration_ms": 12.35}
    assert record["time"].endswith("+00:00")
    assert "sk-live-123" not in line and record["args"]["bytes"] > 0


def test_the_digest_is_capped_and_stable() -> None:
    huge = {"content": "x" * 10_000_000}
    assert arguments_digest(huge) == arguments_digest(dict(huge))
    assert arguments_digest(huge)["bytes"] > 10_000_000
    assert len(str(arguments_digest(huge)["sha256"])) == 16


async def test_tool_calls_are_audited_with_their_outcome(caplog: pytest.LogCaptureFixture
                                                         ) -> None:
    caplog.set_level(logging.INFO, logger="sandgate.audit")
    calls, _, _ = build_calls()
    await calls.call(caller(), "echo", {"text": "hello"})
    await calls.call(caller(), "missing", {})
    records = [json.loads(r.getMessage()) for r in caplog.records if r.name == "sandgate.audit"]
    assert [(r["tool"], r["outcome"]) for r in records] == [("echo", "ok"),
                                                            ("missing", "tool_error")]
    assert records[0]["sandbox"] == "sbx-1" and records[1]["sandbox"] == ""
