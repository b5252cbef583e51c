"""Bearer keys on the agent's HTTP face (the service kit's keys, as ASGI middleware).

Every route but the probes (``/health``, ``/readiness``, ``/liveness``) needs
``Authorization: Bearer <key>`` once keys are configured; the caller's tenant
lands in the ASGI scope's state (``principal``), where the routes read it so
sessions of different tenants never meet. Without keys every caller is the
``default`` tenant and the server binds loopback only
(:func:`sandgate.service.binding.listen_host`). ``POST /process`` checks the
same keys itself (:mod:`agent_svc.process`), ahead of this middleware.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

from sandgate.service.keys import (
    DEFAULT_TENANT,
    TENANT_HEADER,
    Authenticator,
    Principal,
    UnauthenticatedError,
)

__all__ = ["OPEN_PATHS", "BearerAuthMiddleware", "principal_of"]

OPEN_PATHS = frozenset({"/health", "/readiness", "/liveness"})
"""Probes a kubelet calls without credentials."""


def principal_of(scope: Scope) -> Principal:
    """The caller of a request that passed :class:`BearerAuthMiddleware` (``default``
    when the app runs without it)."""
    state: dict[str, Any] = scope.get("state") or {}
    principal = state.get("principal")
    return principal if isinstance(principal, Principal) else Principal(DEFAULT_TENANT)


class BearerAuthMiddleware:
    """Pure ASGI middleware: 401 with a JSON ``detail`` unless the request authenticates."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]
                   if k in (b"authorization", TENANT_HEADER.encode())}
        try:
            principal = self.authenticator.authenticate(
                headers.get("authorization"), headers.get(TENANT_HEADER))
        except UnauthenticatedError as exc:
            body = json.dumps({"detail": str(exc), "code": "unauthenticated"}).encode()
            await send({"type": "http.response.start", "status": 401, "headers": [
                (b"content-type", b"application/json"),
                (b"www-authenticate", b'Bearer realm="sandgate"'),
                (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)
