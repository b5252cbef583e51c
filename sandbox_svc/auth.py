"""Who is calling: bearer keys in gRPC metadata mapped to tenants."""

from __future__ import annotations

import hmac
from collections.abc import Mapping, Sequence

from sandbox_svc.errors import UnauthenticatedError

__all__ = ["DEFAULT_TENANT", "TenantResolver"]

DEFAULT_TENANT = "default"
TENANT_HEADER = "x-sandgate-tenant"


class TenantResolver:
    """Maps ``authorization: Bearer <key>`` to a tenant.

    Without configured keys every caller is the ``default`` tenant (the server
    then binds loopback only). A service key (the gateway's) may act for the
    tenant named in ``x-sandgate-tenant``.
    """

    def __init__(self, keys: Mapping[str, str], service_keys: frozenset[str] = frozenset()):
        self._keys = dict(keys)
        self._service = service_keys

    @property
    def open(self) -> bool:
        return not self._keys

    def resolve(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str:
        headers = {k.lower(): v if isinstance(v, str) else v.decode(errors="replace")
                   for k, v in (metadata or ())}
        if self.open:
            return DEFAULT_TENANT
        auth = headers.get("authorization", "")
        scheme, _, key = auth.partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise UnauthenticatedError(
                "missing credentials: send metadata 'authorization: Bearer <api key>'")
        tenant = None
        for known, owner in self._keys.items():
            # Compare every key in constant time so timing reveals nothing.
            if hmac.compare_digest(known.encode(), key.encode()):
                tenant = owner
        if tenant is None:
            raise UnauthenticatedError("unknown API key")
        acting = headers.get(TENANT_HEADER)
        if acting:
            if key not in self._service:
                raise UnauthenticatedError(
                    f"only a service key may set {TENANT_HEADER}; remove the header")
            return acting
        return tenant
