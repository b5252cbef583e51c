"""Typed reads of Kubernetes objects held as plain JSON dictionaries.

The backend sends and receives API objects as the JSON the API server speaks
(``dict[str, object]``), not as the client's generated model classes: the
builders stay pure data that ``kubernetes-validate`` checks, and reading a list
of Pods costs one ``json.loads``. These helpers give typed access to them.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["Manifest", "annotations_of", "field", "labels_of", "mapping", "name", "text"]

Manifest = dict[str, object]
"""One API object (or a fragment of one) as the API server's JSON."""


def field(obj: object, *path: str) -> object:
    """The value at ``path`` inside nested mappings, or None where a step is missing.

    Raises:
        Nothing.
    """
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def text(obj: object, *path: str) -> str:
    """The string at ``path``, or "" when it is missing or not a string.

    Raises:
        Nothing.
    """
    value = field(obj, *path)
    return value if isinstance(value, str) else ""


def mapping(obj: object, *path: str) -> dict[str, str]:
    """The string-to-string map at ``path`` (labels, annotations, data); {} when missing.

    Raises:
        Nothing.
    """
    value = field(obj, *path)
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, str)}


def name(obj: object) -> str:
    """``metadata.name``. Raises: nothing."""
    return text(obj, "metadata", "name")


def labels_of(obj: object) -> dict[str, str]:
    """``metadata.labels``. Raises: nothing."""
    return mapping(obj, "metadata", "labels")


def annotations_of(obj: object) -> dict[str, str]:
    """``metadata.annotations``. Raises: nothing."""
    return mapping(obj, "metadata", "annotations")
