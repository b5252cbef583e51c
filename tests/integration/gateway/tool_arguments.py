"""Hypothesis strategies for tool arguments, read off each tool's JSON input schema.

``valid_arguments`` draws arguments the schema accepts (hostile ones included:
paths that climb out, follow symlinks or carry NUL bytes, huge and unicode
strings); ``invalid_arguments`` draws arguments it refuses, paired with the name
of the argument that is wrong, for one reason at a time: a required argument
missing, a wrong JSON type, a value out of range or not in the enum.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from hypothesis import strategies as st

__all__ = ["PATH_NAMES", "hostile_paths", "invalid_arguments", "valid_arguments"]

PATH_NAMES = frozenset({"path", "paths", "source", "destination", "filename"})
"""Arguments that name files in the sandbox."""

Schema = Mapping[str, Any]

_ANY_JSON = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _huge_text(max_chars: int) -> st.SearchStrategy[str]:
    # No lone surrogates: JSON on the wire is UTF-8, so no client can send them.
    return st.builds(lambda c, n: c * n, st.characters(exclude_categories=["Cs"]),
                     st.integers(4097, max_chars))


def _text(schema: Schema, huge: int) -> st.SearchStrategy[str]:
    least = int(schema.get("minLength", 0))
    plain = st.text(min_size=least, max_size=60)
    return st.one_of(plain, _huge_text(huge)) if huge else plain


def hostile_paths(segments: list[str], outside: list[str]) -> st.SearchStrategy[str]:
    """Paths relative, absolute, climbing, via the given segments (symlink names
    among them) or straight to the given places outside the workspace."""
    parts = st.lists(st.sampled_from([*segments, "..", ".", "", "sub", "ünï çødé", "a\x00b"]),
                     min_size=1, max_size=5).map("/".join)
    prefixed = st.tuples(st.sampled_from(["", "/", "/workspace/", "./", "/workspace/../"]),
                         parts).map("".join)
    return st.one_of(prefixed, st.sampled_from(outside), st.text(max_size=30),
                     _huge_text(6000), st.just(""))


def _number(schema: Schema) -> st.SearchStrategy[Any]:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum")
    if schema.get("type") == "integer":
        return st.integers(min_value=None if low is None else int(low),
                           max_value=None if high is None else int(high))
    return st.floats(min_value=low, max_value=high, exclude_min="exclusiveMinimum" in schema,
                     allow_nan=False, allow_infinity=False)


def valid_arguments(schema: Schema, *, paths: st.SearchStrategy[str] | None = None,
                    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
                    huge: int = 0) -> st.SearchStrategy[Any]:
    """Values ``schema`` accepts.

    Args:
        schema: a JSON schema (the subset tool schemas use).
        paths: what to draw for path-like properties (see PATH_NAMES).
        overrides: property name -> strategy, wherever the name occurs.
        huge: also draw strings up to this many characters (0: short ones only).
    """
    overrides = dict(overrides or {})

    def draw(node: Schema, name: str = "") -> st.SearchStrategy[Any]:
        if name in overrides:
            return overrides[name]
        if "enum" in node:
            return st.sampled_from(list(node["enum"]))
        if "anyOf" in node:
            return st.one_of(*(draw(option, name) for option in node["anyOf"]))
        kind = node.get("type")
        if kind == "string":
            if paths is not None and name in PATH_NAMES:
                return paths
            return _text(node, huge)
        if kind in ("number", "integer"):
            return _number(node)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array":
            item_name = name if name in PATH_NAMES else ""
            return st.lists(draw(node.get("items", {}), item_name),
                            min_size=int(node.get("minItems", 0)), max_size=4)
        if kind == "object":
            properties = node.get("properties", {})
            required = set(node.get("required", ()))
            return st.fixed_dictionaries(
                {k: draw(v, k) for k, v in properties.items() if k in required},
                optional={k: draw(v, k) for k, v in properties.items() if k not in required})
        return _ANY_JSON

    return draw(schema)


_PROBES: tuple[object, ...] = (None, True, 1.5, "x", [], {})


def _accepts(schema: Schema, value: object) -> bool:
    return bool(jsonschema.validators.validator_for(schema)(schema).is_valid(value))


def _refused(name: str, schema: Schema) -> st.SearchStrategy[Any]:
    """Values of the property ``name`` that ``schema`` refuses; empty if there are none."""
    candidates: list[st.SearchStrategy[Any]] = [_ANY_JSON]
    kind = schema.get("type")
    if kind in ("number", "integer"):
        if "maximum" in schema:
            candidates.append(st.just(schema["maximum"] * 2 + 1))
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        if low is not None:
            candidates.append(st.just(low - 1))
        if kind == "integer":
            candidates.append(st.just(1.5))
    if "enum" in schema:
        candidates.append(st.text(max_size=10))
    if schema.get("minLength"):
        candidates.append(st.just(""))
    if schema.get("minItems"):
        candidates.append(st.just([]))
    if kind == "array" and "items" in schema:
        candidates.append(_refused(name, schema["items"]).map(lambda item: [item]))
    if kind == "object" and schema.get("required"):
        candidates.append(st.just({}))
    return st.one_of(*candidates).filter(lambda v: not _accepts(schema, v))


def invalid_arguments(schema: Schema) -> st.SearchStrategy[tuple[dict[str, Any], str]]:
    """(arguments ``schema`` refuses, the name of the wrong argument), one fault each."""
    properties: Mapping[str, Schema] = schema.get("properties", {})
    required = list(schema.get("required", ()))
    base = valid_arguments(schema)

    def missing(args: dict[str, Any], name: str) -> tuple[dict[str, Any], str]:
        return {k: v for k, v in args.items() if k != name}, name

    def wrong(args: dict[str, Any], name: str, value: Any) -> tuple[dict[str, Any], str]:
        return {**args, name: value}, name

    faults: list[st.SearchStrategy[tuple[dict[str, Any], str]]] = []
    if required:
        faults.append(st.builds(missing, base, st.sampled_from(required)))
    # A property that accepts any JSON value cannot be wrong.
    constrained = sorted(name for name, prop in properties.items()
                         if not all(_accepts(prop, v) for v in _PROBES))
    if constrained:
        faults.append(st.sampled_from(constrained).flatmap(
            lambda name: st.builds(wrong, base, st.just(name),
                                   _refused(name, properties[name]))))
    if not faults:
        raise ValueError("a schema without properties has no invalid arguments")
    return st.one_of(*faults)
