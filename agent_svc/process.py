"""``POST /process`` as a plain ASGI endpoint: the hot path, outside FastAPI's stack.

AgentApp hands ``POST <endpoint_path>`` straight to :func:`handle_process`
(authentication included), because FastAPI's middleware, routing and task
groups cost more than the rest of a short run. What it answers:

- SSE (``text/event-stream``): one ``data: <json>`` per event, events produced
  together written together; a client that disconnects cancels its run;
- ``stream: false``: the final ``Response`` as JSON;
- 401 without a valid key (when keys are configured), 413 for a body over the
  limit, 422 with FastAPI's ``detail`` list for a body that is not an
  ``AgentRequest``, 409 when the session already has a run, 501 without a
  query function.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from starlette.types import Message as ASGIMessage
from starlette.types import Receive, Scope, Send

from agent_svc.errors import AgentServiceError, NotConfiguredError
from agent_svc.protocol import AgentRequest
from agent_svc.runs import Run, normalized
from agent_svc.telemetry import extract_context
from sandgate.service.keys import TENANT_HEADER, UnauthenticatedError

if TYPE_CHECKING:
    from agent_svc.app import AgentApp

__all__ = ["handle_process", "validation_detail"]

_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]


def validation_detail(exc: ValidationError) -> list[dict[str, Any]]:
    """FastAPI's 422 ``detail``: one entry per bad field, located in the body."""
    return [{"type": e["type"], "loc": ["body", *e["loc"]], "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)]


async def _json(send: Send, status: int, body: object,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": data})


class _TooLarge(Exception):
    pass


async def _body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}


async def handle_process(app: AgentApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer one ``POST /process``."""
    headers = _headers(scope)
    tenant = "default"
    if app.authenticator is not None:
        try:
            tenant = app.authenticator.authenticate(
                headers.get("authorization"), headers.get(TENANT_HEADER)).tenant
        except UnauthenticatedError as exc:
            await _json(send, 401, {"detail": str(exc), "code": "unauthenticated"},
                        [(b"www-authenticate", b'Bearer realm="sandgate"')])
            return
    if not app.has_query:
        error = NotConfiguredError("this app has no query function (register one with "
                                   "@app.query())")
        await _json(send, error.http_status, {"detail": str(error), "code": error.code})
        return
    try:
        body = await _body(receive, app.max_request_bytes)
    except _TooLarge:
        await _json(send, 413, {"detail": f"the request body is larger than "
                                f"{app.max_request_bytes} bytes", "code": "too_large"})
        return
    try:
        request = normalized(AgentRequest.model_validate_json(body), tenant)
    except ValidationError as exc:
        await _json(send, 422, {"detail": validation_detail(exc)})
        return
    try:
        run = app.runs.open(tenant, request, app.query_stream, parent=extract_context(headers))
    except AgentServiceError as exc:
        await _json(send, exc.http_status, {"detail": str(exc), "code": exc.code})
        return
    try:
        if request.stream:
            await _stream(run, receive, send)
        else:
            final = await run.result()
            await _json(send, 200, final.model_dump_json())
    finally:
        await run.close()


async def _stream(run: Run, receive: Receive, send: Send) -> None:
    async def watch() -> None:
        # A client that goes away cancels its run; the stream then ends unsent.
        while (await receive())["type"] != "http.disconnect":
            pass
        gone.set()
        run.abandon()

    gone = asyncio.Event()
    watcher = asyncio.get_running_loop().create_task(watch())
    try:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        async for batch in run.batches():
            if gone.is_set():
                return
            data = b"".join(b"data: " + e.model_dump_json().encode() + b"\n\n" for e in batch)
            chunk: ASGIMessage = {"type": "http.response.body", "body": data,
                                  "more_body": True}
            await send(chunk)
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
