"""Bearer keys on the agent's HTTP face.

Every route but the probes (``/health``, ``/readiness``, ``/liveness``) needs
``Authorization: Bearer <key>`` once keys are configured; the caller's tenant
lands in the ASGI scope's state (``principal``), where ``/process`` reads it so
sessions of different tenants never meet. Without keys every caller is the
``default`` tenant and the server binds loopback only.

The authenticator itself is the service kit's (:mod:`sandgate.service.keys`)
when that is installed; until then this module carries the same small
interface (``Authenticator.authenticate``, ``UnauthenticatedError``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = [
    "DEFAULT_TENANT",
    "OPEN_PATHS",
    "TENANT_HEADER",
    "Authenticator",
    "BearerAuthMiddleware",
    "Principal",
    "UnauthenticatedError",
    "parse_api_keys",
    "principal_of",
]

DEFAULT_TENANT = "default"
TENANT_HEADER = "x-sandgate-tenant"
OPEN_PATHS = frozenset({"/health", "/readiness", "/liveness"})
"""Probes a kubelet calls without credentials."""


class UnauthenticatedError(Exception):
    """No credentials, unknown ones, or a tenant header from a key that may not send it."""


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    tenant: str
    key_id: str = ""


def parse_api_keys(raw: str, service_key: str = "") -> dict[str, str]:
    """API key -> tenant from ``key=tenant`` pairs, plus the service key (``default``).

    Raises:
        ValueError: an entry does not look like ``key=tenant``.
    """
    keys: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"API key entry {item!r} must look like key=tenant")
        keys[left.strip()] = right.strip()
    if service_key:
        keys[service_key] = DEFAULT_TENANT
    return keys


class Authenticator:
    """Maps ``Authorization: Bearer <key>`` to a :class:`Principal` (constant-time compare).

    Args:
        keys: API key -> tenant; empty lets everyone in as ``default``.
        service_keys: keys that may act for the tenant named in ``x-sandgate-tenant``.
    """

    def __init__(self, keys: Mapping[str, str], service_keys: frozenset[str] = frozenset()):
        self._keys = [(k.encode(), tenant, hashlib.sha256(k.encode()).hexdigest()[:16])
                      for k, tenant in keys.items()]
        self._service = frozenset(k.encode() for k in service_keys)

    @property
    def open(self) -> bool:
        return not self._keys

    def authenticate(self, authorization: str | None, acting_tenant: str | None = None
                     ) -> Principal:
        """The caller behind an ``Authorization`` header value.

        Raises:
            UnauthenticatedError: no key, an unknown key, or a tenant header sent
                with a key that is not a service key.
        """
        if self.open:
            return Principal(DEFAULT_TENANT)
        scheme, _, key = (authorization or "").strip().partition(" ")
        presented = key.strip().encode()
        if scheme.lower() != "bearer" or not presented:
            raise UnauthenticatedError(
                "missing credentials: send the header 'Authorization: Bearer <api key>'")
        found: Principal | None = None
        for known, tenant, key_id in self._keys:
            # Compare with every key so that timing reveals nothing.
            if hmac.compare_digest(known, presented):
                found = Principal(tenant, key_id)
        if found is None:
            raise UnauthenticatedError("unknown API key")
        if acting_tenant:
            if presented not in self._service:
                raise UnauthenticatedError(
                    f"only a service key may set {TENANT_HEADER}; remove the header")
            return Principal(acting_tenant, found.key_id)
        return found


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
