"""SANDGATE_LOG_FORMAT=json: one JSON object per log event and line, with the trace ids."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from sandgate.service.logs import configure_logging


@pytest.fixture
def out() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    for handler in root.handlers[:]:
        if handler not in handlers:  # the one configure_logging installed
            root.removeHandler(handler)
    root.setLevel(level)


def _events(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_each_event_is_one_json_line_with_time_level_logger_and_message(
        out: io.StringIO) -> None:
    configure_logging("json", stream=out)
    logging.getLogger("sandgate.test").warning("two\nlines of %s", "text")
    logging.getLogger("sandgate.test").debug("below the level")
    (event,) = _events(out)
    assert {k: event[k] for k in ("level", "logger", "message")} == {
        "level": "WARNING", "logger": "sandgate.test", "message": "two\nlines of text"}
    assert str(event["time"]).endswith("Z") and "T" in str(event["time"])
    assert "trace_id" not in event and "exception" not in event


def test_an_exception_comes_with_its_traceback_text(out: io.StringIO) -> None:
    configure_logging("JSON", stream=out)
    try:
        raise KeyError("missing")
    except KeyError:
        logging.getLogger("sandgate.test").exception("failed")
    (event,) = _events(out)
    assert event["message"] == "failed"
    assert "Traceback" in str(event["exception"]) and "KeyError: 'missing'" in str(
        event["exception"])


def test_inside_a_span_the_event_carries_its_trace_and_span_ids(out: io.StringIO) -> None:
    configure_logging("json", stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("tool.call") as span:
        logging.getLogger("sandgate.test").info("in a span")
    context = span.get_span_context()
    (event,) = _events(out)
    assert event["trace_id"] == f"{context.trace_id:032x}"
    assert event["span_id"] == f"{context.span_id:016x}"


def test_text_is_the_default_and_a_second_call_replaces_the_first_handler(
        out: io.StringIO) -> None:
    first = io.StringIO()
    configure_logging("json", stream=first)
    configure_logging("", "warning", stream=out)
    logging.getLogger("sandgate.test").warning("once")
    logging.getLogger("sandgate.test").info("filtered")
    assert first.getvalue() == ""
    (line,) = out.getvalue().splitlines()
    assert line.endswith(" WARNING sandgate.test: once")


@pytest.mark.parametrize("log_format,level,named", [("yaml", "INFO", "SANDGATE_LOG_FORMAT"),
                                                   ("json", "LOUD", "SANDGATE_LOG_LEVEL")])
def test_an_unknown_format_or_level_is_refused_naming_the_setting(
        log_format: str, level: str, named: str, out: io.StringIO) -> None:
    with pytest.raises(ValueError, match=named):
        configure_logging(log_format, level, stream=out)
