"""What a template's sandbox Pods get on Kubernetes: the ``kubernetes:`` block.

A template in the templates file may carry one (every key optional)::

    templates:
      - name: browser
        kubernetes:
          image: sandgate/sandbox:0.1.0
          runtime_class_name: runv
          service_account: ""
          labels: {alibabacloud.com/compute-class: general-purpose}
          annotations: {alibabacloud.com/enable-network-policy-agent: "true"}
          node_selector: {kubernetes.io/arch: amd64}
          tolerations:
            - {key: sandbox, operator: Equal, value: "true", effect: NoSchedule}

The local backend ignores the block; the Kubernetes backend builds each Pod from
it. Labels the backend sets itself (and NetworkPolicies select on) are reserved.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sandbox_svc.errors import InvalidRequestError

__all__ = [
    "RESERVED_LABEL_KEYS",
    "RESERVED_LABEL_PREFIX",
    "PodSettings",
    "Toleration",
    "parse_pod_settings",
]

RESERVED_LABEL_PREFIX = "sandgate.io/"
"""Labels under this prefix (template, sandbox id, state, egress) are the backend's."""
RESERVED_LABEL_KEYS = frozenset({
    "app.kubernetes.io/name", "app.kubernetes.io/managed-by", "app.kubernetes.io/part-of",
    "app.kubernetes.io/component",
})
_KEYS = ("image", "runtime_class_name", "service_account", "labels", "annotations",
         "node_selector", "tolerations")
_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
_OPERATORS = ("Equal", "Exists")
_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"{_DNS_LABEL}(\.{_DNS_LABEL})*")
_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_IMAGE = re.compile(r"[a-z0-9][A-Za-z0-9._/:-]*(@sha256:[0-9a-f]{64})?")


@dataclass(frozen=True)
class Toleration:
    """One Kubernetes toleration, with the field names Kubernetes uses."""

    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None


@dataclass(frozen=True)
class PodSettings:
    """Per-template Pod settings; empty means the backend's defaults."""

    image: str | None = None
    """Sandbox image, pinned by tag or digest; None: the backend's default image."""
    runtime_class_name: str | None = None
    """RuntimeClass of the Pods (``runv``, ``gvisor``); None: the cluster's default."""
    service_account: str | None = None
    """ServiceAccount of the Pods; None: none (no API token is mounted)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    def validate(self, template: str) -> None:
        """Check every value as the API server would, plus Sandgate's own rules.

        Raises:
            InvalidRequestError: naming the key, the bad value and what is allowed.
        """
        where = f"template {template!r}: kubernetes"
        if self.image is not None and not _pinned_image(self.image):
            raise InvalidRequestError(
                f"{where}.image {self.image!r} must be pinned: name:tag (not latest) "
                "or name@sha256:<digest>")
        for key, value in (("runtime_class_name", self.runtime_class_name),
                           ("service_account", self.service_account)):
            if value is not None and not _is_subdomain(value):
                raise InvalidRequestError(
                    f"{where}.{key} {value!r} must be a DNS subdomain name "
                    "(lower-case letters, digits, '-' and '.', at most 253 characters)")
        for what, labels in (("labels", self.labels), ("node_selector", self.node_selector)):
            for key, value in labels.items():
                _check_key(f"{where}.{what}", key)
                if len(value) > 63 or (value and not _NAME.fullmatch(value)):
                    raise InvalidRequestError(
                        f"{where}.{what}[{key!r}] value {value!r} must be at most 63 letters, "
                        "digits, '-', '_' or '.', starting and ending alphanumeric")
        for key in self.labels:
            if key in RESERVED_LABEL_KEYS or key.startswith(RESERVED_LABEL_PREFIX):
                raise InvalidRequestError(
                    f"{where}.labels key {key!r} is set by Sandgate; reserved are "
                    f"{', '.join(sorted(RESERVED_LABEL_KEYS))} and the "
                    f"{RESERVED_LABEL_PREFIX} prefix")
        for key in self.annotations:
            _check_key(f"{where}.annotations", key)
        for toleration in self.tolerations:
            _check_toleration(f"{where}.tolerations", toleration)


def _pinned_image(image: str) -> bool:
    if not _IMAGE.fullmatch(image):
        return False
    if "@sha256:" in image:
        return True
    name, _, tag = image.rpartition(":")
    return bool(name) and "/" not in tag and bool(tag) and tag != "latest"


def _is_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(value))


def _check_key(where: str, key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if (slash and not _is_subdomain(prefix)) or len(name) > 63 or not _NAME.fullmatch(name):
        raise InvalidRequestError(
            f"{where} key {key!r} is not a Kubernetes label key; allowed: an optional DNS "
            "prefix and '/', then at most 63 letters, digits, '-', '_' or '.'")


def _check_toleration(where: str, toleration: Toleration) -> None:
    if toleration.operator not in _OPERATORS:
        raise InvalidRequestError(
            f"{where} operator {toleration.operator!r} is not one of {', '.join(_OPERATORS)}")
    if toleration.effect not in _EFFECTS:
        raise InvalidRequestError(
            f"{where} effect {toleration.effect!r} is not one of "
            f"{', '.join(e or repr(e) for e in _EFFECTS)}")
    if toleration.operator == "Exists" and toleration.value:
        raise InvalidRequestError(f"{where}: operator Exists takes no value")
    if toleration.key:
        _check_key(where, toleration.key)
    elif toleration.operator != "Exists":
        raise InvalidRequestError(f"{where}: an empty key needs operator Exists")
    if toleration.toleration_seconds is not None and toleration.effect != "NoExecute":
        raise InvalidRequestError(f"{where}: tolerationSeconds needs effect NoExecute")


def _string_map(where: str, raw: object) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"{where} must be a mapping of strings to strings")
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidRequestError(
                f"{where}[{key!r}] = {value!r}: keys and values must be strings "
                "(quote values such as \"true\" or \"1\")")
    return dict(raw)


def _optional_string(where: str, raw: object) -> str | None:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidRequestError(f"{where} must be a string, not {raw!r}")
    return raw


def _toleration(where: str, raw: object) -> Toleration:
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"{where} entries must be mappings with keys "
                                  f"{', '.join(_TOLERATION_KEYS)}")
    unknown = set(raw) - set(_TOLERATION_KEYS)
    if unknown:
        raise InvalidRequestError(
            f"{where} entry has unknown keys {sorted(unknown)}; allowed: "
            f"{', '.join(_TOLERATION_KEYS)}")
    texts = {key: _optional_string(f"{where}.{key}", raw.get(key)) or ""
             for key in ("key", "operator", "value", "effect")}
    seconds = raw.get("tolerationSeconds")
    if seconds is not None and (not isinstance(seconds, int) or isinstance(seconds, bool)):
        raise InvalidRequestError(f"{where}.tolerationSeconds must be an integer")
    return Toleration(key=texts["key"], operator=texts["operator"] or "Equal",
                      value=texts["value"], effect=texts["effect"],
                      toleration_seconds=seconds)


def parse_pod_settings(template: str, raw: Any) -> PodSettings:
    """The ``kubernetes:`` block of one template entry, shape-checked.

    Values are checked by :meth:`PodSettings.validate` (the catalog calls it).

    Raises:
        InvalidRequestError: the block is not a mapping, has unknown keys, or a value
            has the wrong type; the message names the key and what is allowed.
    """
    where = f"template {template!r}: kubernetes"
    if raw is None:
        return PodSettings()
    if not isinstance(raw, Mapping):
        raise InvalidRequestError(f"{where} must be a mapping with keys {', '.join(_KEYS)}")
    unknown = set(raw) - set(_KEYS)
    if unknown:
        raise InvalidRequestError(
            f"{where} has unknown keys {sorted(unknown)}; allowed: {', '.join(_KEYS)}")
    tolerations = raw.get("tolerations") or []
    if not isinstance(tolerations, list):
        raise InvalidRequestError(f"{where}.tolerations must be a list")
    return PodSettings(
        image=_optional_string(f"{where}.image", raw.get("image")),
        runtime_class_name=_optional_string(f"{where}.runtime_class_name",
                                            raw.get("runtime_class_name")),
        service_account=_optional_string(f"{where}.service_account",
                                         raw.get("service_account")),
        labels=_string_map(f"{where}.labels", raw.get("labels")),
        annotations=_string_map(f"{where}.annotations", raw.get("annotations")),
        node_selector=_string_map(f"{where}.node_selector", raw.get("node_selector")),
        tolerations=tuple(_toleration(f"{where}.tolerations", t) for t in tolerations),
    )
