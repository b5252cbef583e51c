"""Sandbox records as Secrets: the Kubernetes registry's storage format.

Each sandbox's Secret (named after its id; the backend mounts its ``token``
into the Pod) is also its registry record: labels for what is selected on,
annotations for the rest, so ``kubectl get secrets -l sandgate.io/state=warm``
shows the warm pool and ``kubectl describe`` a record::

    labels:      sandgate.io/state: starting | warm | bound
                 sandgate.io/session: <hash of tenant/user/session/template>
    annotations: sandgate.io/status, tenant, user-id, session-id, created-at,
                 last-active-at, expires-at, target, labels (JSON)
    data:        token

A session's binding is a second, empty Secret named after the session hash
(:func:`lock_secret`): creating it is the one atomic step two replicas can
race on (the second gets 409 AlreadyExists). It is owned by the record, so it
goes when the record goes.
"""

from __future__ import annotations

import base64
import binascii
import json

from sandbox_svc.kubernetes import labels as lbl
from sandbox_svc.kubernetes.manifest import Manifest, annotations_of, labels_of, mapping, text
from sandbox_svc.kubernetes.objects import owner_reference
from sandbox_svc.registry import SandboxRecord, SandboxStatus, SessionKey

__all__ = [
    "STATE_BOUND",
    "STATE_STARTING",
    "STATE_WARM",
    "key_hash",
    "lock_holder",
    "lock_secret",
    "read_record",
    "record_patch",
    "record_secret",
    "state_of",
]

STATE_STARTING = "starting"
STATE_WARM = "warm"
STATE_BOUND = "bound"

_A = lbl.ANNOTATION_PREFIX
_STATUS, _TENANT, _USER, _SESSION_ID = f"{_A}status", f"{_A}tenant", f"{_A}user-id", \
    f"{_A}session-id"
_CREATED, _ACTIVE, _EXPIRES = f"{_A}created-at", f"{_A}last-active-at", f"{_A}expires-at"
_TARGET, _LABELS = f"{_A}target", f"{_A}labels"


def key_hash(key: SessionKey) -> str:
    """The session label value of ``key``. Raises: nothing."""
    return lbl.session_hash(key.tenant, key.user_id, key.session_id, key.template)


def state_of(record: SandboxRecord) -> str:
    """``warm`` (claimable), ``starting`` (pooled, not ready) or ``bound``. Raises: nothing."""
    if not record.pooled:
        return STATE_BOUND
    return STATE_WARM if record.status is SandboxStatus.READY else STATE_STARTING


def _record_labels(record: SandboxRecord) -> dict[str, str | None]:
    key = record.session
    return {
        lbl.MANAGED_BY: lbl.MANAGED_BY_VALUE,
        lbl.SANDBOX_ID: record.sandbox_id,
        lbl.TEMPLATE: record.template,
        lbl.OBJECT: lbl.OBJECT_SANDBOX,
        lbl.STATE: state_of(record),
        lbl.SESSION: key_hash(key) if key is not None else None,
    }


def _record_annotations(record: SandboxRecord) -> dict[str, str]:
    return {
        _STATUS: record.status.value,
        _TENANT: record.tenant,
        _USER: record.user_id,
        _SESSION_ID: record.session_id,
        _CREATED: repr(record.created_at),
        _ACTIVE: repr(record.last_active_at),
        _EXPIRES: "" if record.expires_at is None else repr(record.expires_at),
        _TARGET: record.target,
        _LABELS: json.dumps(record.labels, sort_keys=True),
    }


def record_secret(record: SandboxRecord, namespace: str) -> Manifest:
    """A new record Secret for ``record``. Raises: nothing."""
    record_labels = {k: v for k, v in _record_labels(record).items() if v is not None}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": record.sandbox_id, "namespace": namespace,
                     "labels": record_labels, "annotations": _record_annotations(record)},
        "data": {lbl.TOKEN_KEY: base64.b64encode(record.token.encode()).decode()},
    }


def record_patch(record: SandboxRecord, resource_version: str) -> Manifest:
    """A patch writing ``record`` over a stored one, only if it is still at
    ``resource_version`` (else the API answers 409 Conflict).

    Raises:
        Nothing.
    """
    return {
        "metadata": {"resourceVersion": resource_version,
                     "labels": _record_labels(record),
                     "annotations": _record_annotations(record)},
        "data": {lbl.TOKEN_KEY: base64.b64encode(record.token.encode()).decode()},
    }


def _number(value: str) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def read_record(secret: Manifest) -> SandboxRecord | None:
    """The record a Secret holds, or None when it holds none (a token-only Secret,
    a session lock, or a record written by something else).

    Raises:
        Nothing.
    """
    notes, tags = annotations_of(secret), labels_of(secret)
    if tags.get(lbl.OBJECT) != lbl.OBJECT_SANDBOX or _STATUS not in notes:
        return None
    try:
        status = SandboxStatus(notes[_STATUS])
        token = base64.b64decode(mapping(secret, "data").get(lbl.TOKEN_KEY, "")).decode()
        extra = json.loads(notes.get(_LABELS) or "{}")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    created = _number(notes.get(_CREATED, ""))
    if created is None or not isinstance(extra, dict):
        return None
    return SandboxRecord(
        sandbox_id=tags.get(lbl.SANDBOX_ID) or text(secret, "metadata", "name"),
        template=tags.get(lbl.TEMPLATE, ""),
        token=token,
        status=status,
        created_at=created,
        last_active_at=_number(notes.get(_ACTIVE, "")) or created,
        tenant=notes.get(_TENANT, ""),
        user_id=notes.get(_USER, ""),
        session_id=notes.get(_SESSION_ID, ""),
        expires_at=_number(notes.get(_EXPIRES, "")),
        target=notes.get(_TARGET, ""),
        labels={str(k): str(v) for k, v in extra.items()},
    )


def lock_secret(key: SessionKey, holder: Manifest, namespace: str) -> Manifest:
    """The Secret binding ``key`` to the record Secret ``holder`` (its owner).

    Raises:
        Nothing.
    """
    digest = key_hash(key)
    holder_id = labels_of(holder).get(lbl.SANDBOX_ID) or text(holder, "metadata", "name")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": lbl.session_lock_name(digest),
            "namespace": namespace,
            "labels": {lbl.MANAGED_BY: lbl.MANAGED_BY_VALUE, lbl.OBJECT: lbl.OBJECT_SESSION,
                       lbl.SESSION: digest, lbl.SANDBOX_ID: holder_id,
                       lbl.TEMPLATE: key.template},
            "annotations": {_TENANT: key.tenant, _USER: key.user_id,
                            _SESSION_ID: key.session_id},
            "ownerReferences": [owner_reference(holder)],
        },
    }


def lock_holder(lock: Manifest) -> str:
    """The sandbox id a session lock points at. Raises: nothing."""
    return labels_of(lock).get(lbl.SANDBOX_ID, "")
