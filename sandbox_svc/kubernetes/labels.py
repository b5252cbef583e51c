"""Names, labels and annotations Sandgate puts on its Kubernetes objects.

Every object of one sandbox is named after its id (Pod, NetworkPolicy, Secret)
and labelled with it; the ``sandgate.io/`` prefix is Sandgate's own (templates
may not set labels under it, see ``sandbox_svc.pod_settings``)::

    app.kubernetes.io/managed-by: sandgate    every object; orphan sweeps select on it
    app.kubernetes.io/name: sandbox            sandbox Pods (the namespace's policies select it)
    sandgate.io/sandbox-id: <id>               Pod, Secret, NetworkPolicy of one sandbox
    sandgate.io/template: <template>
    sandgate.io/egress: internet               Pods of templates with network: true
    sandgate.io/object: sandbox | session      the two kinds of Secrets (token+record, lock)
    sandgate.io/state: starting | warm | bound record Secrets (see registry.py)
    sandgate.io/session: <hash>                record and lock of a session-bound sandbox
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

__all__ = [
    "ANNOTATION_PREFIX",
    "EGRESS",
    "MANAGED_BY",
    "MANAGED_BY_VALUE",
    "NAME",
    "OBJECT",
    "OBJECT_SANDBOX",
    "OBJECT_SESSION",
    "PAUSE_ANNOTATION",
    "SANDBOX_ID",
    "SANDBOX_NAME_VALUE",
    "SESSION",
    "STATE",
    "TEMPLATE",
    "TOKEN_KEY",
    "is_label_value",
    "is_object_name",
    "selector",
    "session_hash",
    "session_lock_name",
]

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "sandgate"
NAME = "app.kubernetes.io/name"
SANDBOX_NAME_VALUE = "sandbox"
SANDBOX_ID = "sandgate.io/sandbox-id"
TEMPLATE = "sandgate.io/template"
EGRESS = "sandgate.io/egress"
OBJECT = "sandgate.io/object"
OBJECT_SANDBOX = "sandbox"
OBJECT_SESSION = "session"
STATE = "sandgate.io/state"
SESSION = "sandgate.io/session"
ANNOTATION_PREFIX = "sandgate.io/"
PAUSE_ANNOTATION = "sandgate.io/pause-annotation"
"""Set (in a template's ``kubernetes.annotations``) to the platform's hibernation
annotation key, e.g. ACS's; pause then sets that annotation to "true" on the
Pod and resume to "false". Without it the backend cannot pause."""
TOKEN_KEY = "token"
"""Key of the sandbox token in its Secret; mounted as /run/sandgate/token."""

_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?")


def is_object_name(value: str) -> bool:
    """Whether ``value`` can name a Pod, Secret and NetworkPolicy (an RFC 1123 label).

    Raises:
        Nothing.
    """
    return bool(_OBJECT_NAME.fullmatch(value))


def is_label_value(value: str) -> bool:
    """Whether ``value`` is a valid Kubernetes label value. Raises: nothing."""
    return bool(_LABEL_VALUE.fullmatch(value))


def selector(pairs: Mapping[str, str] | None = None) -> str:
    """A label selector ``k=v,...`` for ``pairs`` that also requires ``managed-by: sandgate``.

    Raises:
        Nothing.
    """
    terms = [f"{MANAGED_BY}={MANAGED_BY_VALUE}"]
    terms += [f"{key}={value}" for key, value in (pairs or {}).items()]
    return ",".join(terms)


def session_hash(tenant: str, user_id: str, session_id: str, template: str) -> str:
    """A label-safe, fixed-length digest of a session key (32 hex digits).

    Raises:
        Nothing.
    """
    raw = "\x1f".join((tenant, user_id, session_id, template)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def session_lock_name(digest: str) -> str:
    """Name of the Secret whose existence binds a session (see registry.py).

    Raises:
        Nothing.
    """
    return f"sandgate-session-{digest}"
