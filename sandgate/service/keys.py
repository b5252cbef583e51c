"""Who is calling: bearer API keys mapped to tenants, for every service and face.

Keys are configured as ``key=tenant`` pairs (``SANDGATE_API_KEYS``); a service
key (``BEARER_TOKEN``) belongs to the ``default`` tenant and may act for the
tenant it names in ``x-sandgate-tenant``, which is how the gateway calls
sandbox_svc for each of its tenants. Without any key every caller is the
``default`` tenant, and the server binds loopback only (:mod:`.binding`).

The same :class:`Authenticator` reads an HTTP ``Authorization`` header value or
gRPC metadata; keys are compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeAlias

__all__ = [
    "AUTHORIZATION",
    "DEFAULT_TENANT",
    "TENANT_HEADER",
    "ApiKeySettings",
    "Authenticator",
    "Metadata",
    "Principal",
    "UnauthenticatedError",
    "digest",
    "parse_api_keys",
    "parse_pairs",
]

DEFAULT_TENANT = "default"
"""The tenant of a server without keys, and of its service key."""
TENANT_HEADER = "x-sandgate-tenant"
"""Header (or gRPC metadata key) naming the tenant a service key acts for."""
AUTHORIZATION = "authorization"
"""The credential's header or metadata key: ``authorization: Bearer <key>``."""

Metadata: TypeAlias = Iterable[tuple[str, str | bytes]]
"""gRPC invocation metadata: (key, value) pairs; keys are lower case."""


class UnauthenticatedError(Exception):
    """The caller presented no credentials, unknown ones, or used them beyond their right.

    Every server maps it to ``UNAUTHENTICATED`` (HTTP 401); the message says what
    to send and never echoes the credential.
    """


def digest(secret: str) -> str:
    """A short, stable, one-way name for a secret (safe to log and to store)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def parse_pairs(raw: str, what: str, form: str = "name=value") -> dict[str, str]:
    """Comma-separated ``name=value`` pairs, with white space around each part ignored.

    Args:
        raw: e.g. ``"k1=acme, k2=globex"``; empty entries are skipped.
        what: what an entry is, for the error message (``"API key"``).
        form: how an entry must look, for the error message (``"key=tenant"``).

    Returns:
        name -> value; a name given twice keeps its last value.

    Raises:
        ValueError: an entry lacks ``=``, a name or a value.
    """
    pairs: dict[str, str] = {}
    for item in filter(None, (p.strip() for p in raw.split(","))):
        left, sep, right = item.partition("=")
        if not sep or not left.strip() or not right.strip():
            raise ValueError(f"{what} entry {item!r} must look like {form}")
        pairs[left.strip()] = right.strip()
    return pairs


def parse_api_keys(raw: str, service_key: str = "") -> dict[str, str]:
    """API key -> tenant, from ``key=tenant`` pairs plus the service key (tenant ``default``).

    Raises:
        ValueError: an entry does not look like ``key=tenant``.
    """
    keys = parse_pairs(raw, "API key", "key=tenant")
    if service_key:
        keys[service_key] = DEFAULT_TENANT
    return keys


@dataclass(frozen=True)
class Principal:
    """An authenticated caller."""

    tenant: str
    key_id: str = ""
    """Digest of the key used; empty when the server runs without keys."""

    @property
    def default_session(self) -> str:
        """The session of a caller that names none: one per API key, or one local one."""
        return f"key-{self.key_id}" if self.key_id else "local"


def _text(value: str | bytes | None) -> str | None:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _bearer(authorization: str | None) -> str:
    scheme, _, key = (authorization or "").strip().partition(" ")
    return key.strip() if scheme.lower() == "bearer" else ""


class Authenticator:
    """Maps ``authorization: Bearer <key>`` to a :class:`Principal`.

    Without keys every caller is the ``default`` tenant. A service key may act
    for the tenant named in ``x-sandgate-tenant``; any other key sending that
    header is refused, so a tenant can never pose as another.
    """

    def __init__(self, keys: Mapping[str, str], service_keys: frozenset[str] = frozenset(),
                 *, credential: str = "API key") -> None:
        """
        Args:
            keys: key -> tenant (see :func:`parse_api_keys`).
            service_keys: the keys that may act for another tenant; each must be in ``keys``.
            credential: what callers call the key, for error messages (``"sandbox token"``).

        Raises:
            ValueError: a service key is not one of ``keys``.
        """
        if not service_keys <= keys.keys():
            raise ValueError("every service key must also be a key (mapped to its tenant)")
        self._keys = [(k.encode(), Principal(tenant, digest(k))) for k, tenant in keys.items()]
        self._service = frozenset(k.encode() for k in service_keys)
        self._credential = credential

    @property
    def open(self) -> bool:
        """True without keys: everyone is the ``default`` tenant (serve loopback only)."""
        return not self._keys

    def authenticate(self, authorization: str | None, acting_tenant: str | None = None
                     ) -> Principal:
        """The caller behind an ``Authorization`` header value.

        Args:
            authorization: the header (or metadata) value, ``Bearer <key>``.
            acting_tenant: the ``x-sandgate-tenant`` value, if the caller sent one.

        Raises:
            UnauthenticatedError: no key, an unknown key, or a tenant header sent with
                a key that is not a service key.
        """
        if self.open:
            return Principal(DEFAULT_TENANT)
        key = _bearer(authorization)
        if not key:
            raise UnauthenticatedError(f"missing credentials: send 'authorization: Bearer "
                                       f"<{self._credential}>'")
        presented = key.encode()
        found: Principal | None = None
        for known, principal in self._keys:
            # Compare with every key in constant time so timing reveals nothing.
            if hmac.compare_digest(known, presented):
                found = principal
        if found is None:
            raise UnauthenticatedError(f"unknown {self._credential}")
        if acting_tenant:
            if presented not in self._service:
                raise UnauthenticatedError(
                    f"only a service key may set {TENANT_HEADER}; remove the header")
            return Principal(acting_tenant, found.key_id)
        return found

    def authenticate_metadata(self, metadata: Metadata | None) -> Principal:
        """The caller behind gRPC invocation metadata.

        Raises:
            UnauthenticatedError: as :meth:`authenticate`.
        """
        values = {key: value for key, value in metadata or ()
                  if key in (AUTHORIZATION, TENANT_HEADER)}
        return self.authenticate(_text(values.get(AUTHORIZATION)),
                                 _text(values.get(TENANT_HEADER)))


class ApiKeySettings:
    """Mixin for a service's settings: its keys, read from ``api_keys`` and ``bearer_token``.

    The settings class declares both fields (with its own environment names);
    this gives every service the same meaning for them.
    """

    api_keys: str
    """Comma-separated ``key=tenant`` pairs."""
    bearer_token: str
    """The service key: tenant ``default``, and may act for another tenant."""

    def tenant_keys(self) -> dict[str, str]:
        """API key -> tenant (the service key maps to ``default``).

        Raises:
            ValueError: an entry of ``api_keys`` does not look like ``key=tenant``.
        """
        return parse_api_keys(self.api_keys, self.bearer_token)

    def service_keys(self) -> frozenset[str]:
        """Keys that may act for another tenant (``x-sandgate-tenant``)."""
        return frozenset({self.bearer_token} if self.bearer_token else ())

    def authenticator(self) -> Authenticator:
        """The authenticator of these keys.

        Raises:
            ValueError: as :meth:`tenant_keys`.
        """
        return Authenticator(self.tenant_keys(), self.service_keys())
