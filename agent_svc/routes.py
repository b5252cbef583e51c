"""The HTTP routes every AgentApp has: ``/process/cancel``, probes, task routes.

``POST /process`` itself is answered by :mod:`agent_svc.process` (before
FastAPI's stack); it is declared here for the OpenAPI schema.

``POST /process/cancel`` with ``{"session_id": "..."}`` interrupts that
session's run: its stream ends with ``status: "canceled"``; the answer is
``{"session_id", "response_id", "status": "canceling"}``, or 404 when the
session has no run in progress.

Domain errors answer ``{"detail": message, "code": code}`` with their status
(:mod:`agent_svc.errors`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse
from starlette.responses import Response as HTTPResponse

from agent_svc.auth import principal_of
from agent_svc.errors import AgentServiceError, InvalidRequestError, NotConfiguredError
from agent_svc.process import validation_detail
from agent_svc.protocol import AgentRequest

if TYPE_CHECKING:
    from agent_svc.app import AgentApp

__all__ = ["CancelRequest", "install_routes", "install_task_routes"]


class CancelRequest(BaseModel):
    """Body of ``POST /process/cancel``."""

    session_id: str


def _error_response(exc: AgentServiceError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "code": exc.code}, status_code=exc.http_status)


async def _handle_domain_error(_: Request, exc: Exception) -> HTTPResponse:
    assert isinstance(exc, AgentServiceError)
    return _error_response(exc)


async def _read_body(request: Request, limit: int) -> bytes:
    body = await request.body()
    if len(body) > limit:
        raise _TooLarge(limit)
    return body


class _TooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the request body is larger than {limit} bytes")


async def _documented_process() -> None:
    """Run the query function: SSE events, or one JSON ``Response`` with ``stream: false``."""
    raise NotConfiguredError("POST /process is served by AgentApp itself")


def install_routes(app: AgentApp) -> None:
    """Add ``/process``, ``/process/cancel``, the probes and ``/`` to ``app``."""
    app.add_exception_handler(AgentServiceError, _handle_domain_error)
    path = app.endpoint_path

    async def cancel(request: Request) -> HTTPResponse:
        """Interrupt the run of a session: its stream ends ``canceled``."""
        try:
            body = CancelRequest.model_validate_json(await _read_body(request, 64 * 1024))
        except ValidationError as exc:
            return JSONResponse({"detail": validation_detail(exc)}, status_code=422)
        except _TooLarge as exc:
            return JSONResponse({"detail": str(exc), "code": "too_large"}, status_code=413)
        run = app.runs.cancel(principal_of(request.scope).tenant, body.session_id)
        return JSONResponse({"session_id": body.session_id,
                             "response_id": run.builder.response_id, "status": "canceling"})

    async def health() -> dict[str, Any]:
        """Liveness plus a summary: always 200 while the process serves."""
        return {"status": "healthy", "app": app.app_name, "ready": app.ready,
                "runs_in_progress": len(app.runs)}

    async def liveness() -> dict[str, str]:
        return {"status": "alive"}

    async def readiness() -> HTTPResponse:
        """200 once start-up finished and every readiness check answers true, else 503."""
        if not app.ready:
            return JSONResponse({"ready": False, "reason": "starting"}, status_code=503)
        checks = await app.check_ready()
        ready = all(checks.values())
        return JSONResponse({"ready": ready, "checks": checks},
                            status_code=200 if ready else 503)

    async def root() -> dict[str, Any]:
        return {"service": app.app_name, "description": app.app_description,
                "endpoints": {"process": path, "cancel": f"{path}/cancel", "health": "/health",
                              "readiness": "/readiness", "liveness": "/liveness",
                              "tasks": sorted(app.tasks)}}

    # POST /process itself is answered before FastAPI's stack (AgentApp.__call__ ->
    # agent_svc.process); this route only documents it in the OpenAPI schema.
    app.add_api_route(path, _documented_process, methods=["POST"], tags=["agent"],
                      response_model=None, openapi_extra={"requestBody": {
                          "required": True, "content": {"application/json": {
                              "schema": AgentRequest.model_json_schema(
                                  ref_template="#/components/schemas/{model}")}}}})
    app.add_api_route(f"{path}/cancel", cancel, methods=["POST"], tags=["agent"],
                      response_model=None,
                      openapi_extra={"requestBody": {"required": True, "content": {
                          "application/json": {"schema": CancelRequest.model_json_schema()}}}})
    app.add_api_route("/health", health, methods=["GET"], tags=["probes"])
    app.add_api_route("/liveness", liveness, methods=["GET"], tags=["probes"])
    app.add_api_route("/readiness", readiness, methods=["GET"], tags=["probes"],
                      response_model=None)
    app.add_api_route("/", root, methods=["GET"], include_in_schema=False)


def install_task_routes(app: AgentApp, path: str) -> None:
    """``POST path`` submits the task registered there; ``GET path/{task_id}`` polls it."""

    async def submit(request: Request) -> dict[str, str]:
        body = await request.body()
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            raise InvalidRequestError("the task body must be JSON") from None
        task_id = await app.submit_task(path, payload)
        return {"task_id": task_id, "status": "submitted", "queue": app.tasks[path].queue}

    async def status(task_id: str) -> dict[str, Any]:
        if app.task_runner is None:
            raise NotConfiguredError("this app is served without a task runner")
        return (await app.task_runner.get(task_id)).as_json()

    name = path.strip("/").replace("/", "_") or "task"
    app.add_api_route(path, submit, methods=["POST"], tags=["tasks"], name=f"submit_{name}")
    app.add_api_route(f"{path}/{{task_id}}", status, methods=["GET"], tags=["tasks"],
                      name=f"status_{name}")
