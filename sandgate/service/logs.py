"""Logging of every entry point: lines for people, or JSON lines for collectors.

    configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"),
                      os.environ.get(LOG_LEVEL_ENV, "INFO"), environ=os.environ)

``SANDGATE_LOG_FORMAT=json`` gives one JSON object per log event and line:
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``exception`` (the
traceback text, when the event carries one) and, while an OpenTelemetry span
is current, its ``trace_id`` and ``span_id`` (hex, as W3C traceparent writes
them), so a log line joins its trace. Logs go to stderr: for ``sandgate mcp``,
stdout is the protocol.

gRPC's C core writes its own plain lines to stderr, outside Python's logging;
in JSON mode it is silenced (``GRPC_VERBOSITY=NONE`` unless set otherwise),
which works only before ``grpc`` is first imported: its failures reach callers
as exceptions and status codes anyway.

Each entry point (``sandgate``'s ``main``, each service's ``__main__``) reads
the environment and calls :func:`configure_logging` once, before it imports
the servers; libraries only log.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import TextIO

__all__ = ["LOG_FORMATS", "LOG_FORMAT_ENV", "LOG_LEVEL_ENV", "JsonFormatter",
           "configure_logging"]

LOG_FORMAT_ENV = "SANDGATE_LOG_FORMAT"
LOG_LEVEL_ENV = "SANDGATE_LOG_LEVEL"
LOG_FORMATS = ("text", "json")
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, with the current span's ids."""

    def __init__(self) -> None:
        super().__init__()
        # Imported here: sandboxd, which logs as text, never loads OpenTelemetry.
        from opentelemetry import trace

        self._current_span = trace.get_current_span

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        context = self._current_span().get_span_context()
        if context.is_valid:
            entry["trace_id"] = format(context.trace_id, "032x")
            entry["span_id"] = format(context.span_id, "016x")
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(log_format: str = "text", level: str | int = logging.INFO, *,
                      stream: TextIO | None = None,
                      environ: MutableMapping[str, str] | None = None) -> None:
    """Send every logger's records to ``stream`` (stderr) in ``log_format``.

    Replaces the root logger's handlers, so calling it again reconfigures.

    Args:
        log_format: ``text`` or ``json`` (case-insensitive; empty means text).
        level: the root level, a name such as ``"INFO"`` or a number.
        stream: where lines go; stderr when omitted.
        environ: the process environment; in JSON mode ``GRPC_VERBOSITY`` defaults
            to ``NONE`` there (call before ``grpc`` is imported).

    Raises:
        ValueError: an unknown format or level; the message names the allowed ones.
    """
    chosen = (log_format or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise ValueError(f"{LOG_FORMAT_ENV} must be one of {', '.join(LOG_FORMATS)}; "
                         f"got {log_format!r}")
    if isinstance(level, str):
        name = level.strip().upper() or "INFO"
        if not isinstance(logging.getLevelName(name), int):
            raise ValueError(f"{LOG_LEVEL_ENV} must be DEBUG, INFO, WARNING, ERROR or "
                             f"CRITICAL; got {level!r}")
        level = name
    if chosen == "json" and environ is not None:
        environ.setdefault("GRPC_VERBOSITY", "NONE")
    handler = _SandgateHandler(stream)
    handler.setFormatter(JsonFormatter() if chosen == "json" else logging.Formatter(_TEXT_FORMAT))
    root = logging.getLogger()
    for old in root.handlers[:]:
        if isinstance(old, _SandgateHandler):  # others (a test runner's) stay
            root.removeHandler(old)
            old.close()
    root.addHandler(handler)
    root.setLevel(level)


class _SandgateHandler(logging.StreamHandler[TextIO]):
    """Writes to ``stream``, or to whatever ``sys.stderr`` is at the time of each record
    (as logging's own last-resort handler does), so a replaced stderr is followed."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__()
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # StreamHandler.__init__ sets it; the property decides
