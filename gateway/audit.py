"""The audit log: one JSON line per tool call.

A line holds when, who (tenant, user, session), what (tool, sandbox), how long,
how it ended, and which gateway process (``pid``: workers share one log) served
it. Arguments appear only as a digest of at most the first ``_DIGEST_CAP`` bytes
of their canonical JSON, with their size, so the log never holds file contents,
commands or secrets. Session ids that stand for a credential (an API key, an MCP
session id) are already digests upstream.

Lines go to the ``sandgate.audit`` logger, or (``AuditLog.to_file``) to a file
through a queue, so writing never blocks a request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import logging.handlers
import os
import queue
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["AUDIT_LOGGER", "AuditEvent", "AuditLog", "arguments_digest"]

AUDIT_LOGGER = "sandgate.audit"
_DIGEST_CAP = 64 * 1024


def arguments_digest(arguments: Mapping[str, Any] | None) -> dict[str, object]:
    """``{"sha256": <16 hex>, "bytes": <size>}`` of the canonical JSON of the arguments."""
    raw = json.dumps(arguments or {}, sort_keys=True, separators=(",", ":"),
                     default=str).encode()
    return {"sha256": hashlib.sha256(raw[:_DIGEST_CAP]).hexdigest()[:16], "bytes": len(raw)}


@dataclass(frozen=True)
class AuditEvent:
    tenant: str
    user: str
    session: str
    tool: str
    transport: str
    """mcp-http, mcp-stdio or grpc."""
    outcome: str
    """ok, tool_error, or the status name of a failure (NOT_FOUND, INTERNAL, ...)."""
    duration_ms: float
    sandbox: str = ""
    args: Mapping[str, object] | None = None
    trace_id: str = ""


class AuditLog:
    """Writes audit events as JSON lines to a logger (``sandgate.audit`` by default)."""

    def __init__(self, logger: logging.Logger | None = None,
                 listener: logging.handlers.QueueListener | None = None) -> None:
        self._logger = logger or logging.getLogger(AUDIT_LOGGER)
        self._listener = listener

    @classmethod
    def to_file(cls, path: Path) -> AuditLog:
        """An audit log appended to ``path`` by a background thread (never blocks a call)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        target = logging.FileHandler(path, encoding="utf-8")
        target.setFormatter(logging.Formatter("%(message)s"))
        lines: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        # A private logger: the file gets audit lines only, and nothing global changes.
        logger = logging.Logger(AUDIT_LOGGER, logging.INFO)
        logger.addHandler(logging.handlers.QueueHandler(lines))
        listener = logging.handlers.QueueListener(lines, target)
        listener.start()
        return cls(logger, listener)

    def record(self, event: AuditEvent) -> None:
        if not self._logger.isEnabledFor(logging.INFO):
            return
        line = {"time": datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="milliseconds"),
                "tenant": event.tenant, "user": event.user, "session": event.session,
                "tool": event.tool, "transport": event.transport, "outcome": event.outcome,
                "duration_ms": round(event.duration_ms, 2), "sandbox": event.sandbox,
                "args": dict(event.args or {}), "trace_id": event.trace_id, "pid": os.getpid()}
        self._logger.info(json.dumps(line, separators=(",", ":"), default=str))

    def close(self) -> None:
        """Flush and close the file, if any."""
        if self._listener is not None:
            self._listener.stop()
            for handler in self._listener.handlers:
                handler.close()
            self._listener = None
