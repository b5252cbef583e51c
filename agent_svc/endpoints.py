"""Custom endpoints (``@app.endpoint(path)``) and the SSE encoding they share with /process.

A handler may be a plain function, a coroutine function, or a (sync or async)
generator; FastAPI parses its parameters (query parameters, a pydantic body,
``Request``, ``AgentRequest``) from its signature. Generators stream
Server-Sent Events, one ``data: <json>`` per item; an exception inside one ends
the stream with ``data: {"error": {"code": "endpoint_error", "message": ...}}``.
Plain and coroutine functions answer JSON. Sync handlers run in a worker
thread (FastAPI's rule), so they never block the event loop.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from pydantic import BaseModel
from starlette.concurrency import iterate_in_threadpool
from starlette.responses import StreamingResponse

__all__ = ["SSE_HEADERS", "endpoint_handler", "sse_event", "to_jsonable"]

logger = logging.getLogger(__name__)

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
"""Headers of every SSE answer (no caching; proxies must not buffer)."""

_MAX_DEPTH = 32


def to_jsonable(value: object, depth: int = 0) -> Any:
    """``value`` as plain JSON data (pydantic models, dataclasses, containers; else ``str``)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if depth > _MAX_DEPTH:
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return to_jsonable(dataclasses.asdict(value), depth + 1)
    return str(value)


def sse_event(data: str) -> bytes:
    """One SSE event carrying ``data`` (a JSON text without newlines)."""
    return b"data: " + data.encode() + b"\n\n"


async def _sse(items: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    try:
        async for item in items:
            yield sse_event(json.dumps(to_jsonable(item), ensure_ascii=False))
    except Exception as exc:
        logger.exception("streaming endpoint failed")
        error = {"code": "endpoint_error", "message": f"{type(exc).__name__}: {exc}"[:500]}
        yield sse_event(json.dumps({"error": error}))


def endpoint_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    """A FastAPI endpoint for ``handler`` with the same signature.

    Generators are wrapped so the route answers SSE. The wrapper deliberately
    does not set ``__wrapped__``: FastAPI would unwrap it and treat an async
    wrapper of a generator as a generator.
    """
    # Annotations evaluated in the handler's module: FastAPI would resolve strings against
    # the wrapper's module instead.
    signature = inspect.signature(handler, eval_str=True)
    if inspect.isasyncgenfunction(handler):
        async def streaming(*args: Any, **kwargs: Any) -> StreamingResponse:
            return StreamingResponse(_sse(handler(*args, **kwargs)),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        wrapped: Callable[..., Any] = streaming
    elif inspect.isgeneratorfunction(handler):
        async def sync_streaming(*args: Any, **kwargs: Any) -> StreamingResponse:
            items: Iterator[Any] = handler(*args, **kwargs)
            return StreamingResponse(_sse(iterate_in_threadpool(items)),
                                     media_type="text/event-stream", headers=SSE_HEADERS)
        wrapped = sync_streaming
    else:
        return handler
    wrapped.__signature__ = signature  # type: ignore[attr-defined]
    wrapped.__name__ = getattr(handler, "__name__", "endpoint")
    wrapped.__doc__ = handler.__doc__
    return wrapped
