"""Who is calling: bearer API keys mapped to tenants, for both faces."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from gateway.errors import UnauthenticatedError

__all__ = ["DEFAULT_TENANT", "TENANT_HEADER", "Authenticator", "Principal", "digest"]

DEFAULT_TENANT = "default"
TENANT_HEADER = "x-sandgate-tenant"


def digest(secret: str) -> str:
    """A short, stable, one-way name for a secret (safe to log and to store)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    tenant: str
    key_id: str = ""
    """Digest of the API key used; empty when the gateway runs without keys."""

    @property
    def default_session(self) -> str:
        """The session of a caller that names none: one per API key, or one local one."""
        return f"key-{self.key_id}" if self.key_id else "local"


class Authenticator:
    """Maps ``Authorization: Bearer <key>`` to a :class:`Principal`.

    Without keys every caller is the ``default`` tenant (the gateway then binds
    loopback only). A service key may act for the tenant named in
    ``x-sandgate-tenant``.
    """

    def __init__(self, keys: Mapping[str, str], service_keys: frozenset[str] = frozenset()):
        self._keys = [(k.encode(), tenant) for k, tenant in keys.items()]
        self._service = frozenset(k.encode() for k in service_keys)
        self._principals = {k: Principal(tenant, digest(k)) for k, tenant in keys.items()}

    @property
    def open(self) -> bool:
        return not self._keys

    def authenticate(self, authorization: str | None, acting_tenant: str | None = None
                     ) -> Principal:
        """The caller behind an ``Authorization`` header value.

        Raises:
            UnauthenticatedError: no key, an unknown key, or a tenant header from a
                key that is not a service key.
        """
        if self.open:
            return Principal(DEFAULT_TENANT)
        scheme, _, key = (authorization or "").strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise UnauthenticatedError(
                "missing credentials: send the header 'Authorization: Bearer <api key>'")
        presented = key.encode()
        found: str | None = None
        for known, _tenant in self._keys:
            # Compare with every key in constant time so timing reveals nothing.
            if hmac.compare_digest(known, presented):
                found = key
        if found is None:
            raise UnauthenticatedError("unknown API key")
        principal = self._principals[found]
        if acting_tenant:
            if presented not in self._service:
                raise UnauthenticatedError(
                    f"only a service key may set {TENANT_HEADER}; remove the header")
            return Principal(acting_tenant, principal.key_id)
        return principal
