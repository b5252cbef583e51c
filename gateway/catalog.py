"""The tool catalog: what exists, who may see it, and where each tool runs.

Sandbox tools come in groups (``base``, ``filesystem``, ``browser``); each group
is routed to a template (by default base and filesystem to ``filesystem``, so a
session's shell and file tools share one sandbox, and browser to ``browser``).
Gateway tools run in the gateway. Upstream tools come from federated MCP
servers, under their prefix. A per-tenant allowlist of name patterns filters
``tools/list`` and ``tools/call`` alike: a tool a tenant may not use is, for
that tenant, an unknown tool.
"""

from __future__ import annotations

import enum
import fnmatch
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from gateway.errors import ToolArgumentsError, ToolNotFoundError

__all__ = ["Allowlist", "Catalog", "ToolSource", "ToolSpec"]

logger = logging.getLogger(__name__)


class ToolSource(enum.Enum):
    SANDBOX = "sandbox"
    GATEWAY = "gateway"
    UPSTREAM = "upstream"


@dataclass(frozen=True)
class ToolSpec:
    """One tool as listed to callers."""

    name: str
    description: str
    input_schema: Mapping[str, Any]
    group: str
    """Tool group (base, filesystem, browser, gateway) or the upstream's name."""
    source: ToolSource = ToolSource.SANDBOX
    title: str | None = None
    read_only: bool = False
    destructive: bool = False
    needs_sandbox: bool = True
    """False for sandbox-group tools that answer without a sandbox."""
    tenants: frozenset[str] | None = None
    """Tenants that may see the tool (upstream tools); None means every tenant."""
    upstream_name: str = field(default="", compare=False)
    """The tool's name on its upstream server."""


class Allowlist:
    """Tenant -> tool name patterns (``fnmatch`` globs); ``*`` is every other tenant."""

    def __init__(self, rules: Mapping[str, Sequence[str]] | None = None) -> None:
        self._rules = {tenant: tuple(patterns) for tenant, patterns in (rules or {}).items()}

    def allows(self, tenant: str, tool: str) -> bool:
        patterns = self._rules.get(tenant, self._rules.get("*"))
        if patterns is None:
            return True
        return any(fnmatch.fnmatchcase(tool, p) for p in patterns)


def _describe_expected(schema: Mapping[str, Any]) -> str:
    properties = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    parts = []
    for name, prop in properties.items():
        kind = prop.get("type", "any") if isinstance(prop, Mapping) else "any"
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts) or "no arguments"


class Catalog:
    """Every tool the gateway can serve, and the per-tenant view of them."""

    def __init__(self, sandbox_tools: Iterable[ToolSpec], routes: Mapping[str, str],
                 gateway_tools: Iterable[ToolSpec] = (), allowlist: Allowlist | None = None,
                 upstream_tools: Callable[[], Iterable[ToolSpec]] | None = None) -> None:
        self._builtin: dict[str, ToolSpec] = {}
        for spec in (*sandbox_tools, *gateway_tools):
            self._builtin[spec.name] = spec
        missing = {s.group for s in self._builtin.values()
                   if s.source is ToolSource.SANDBOX and s.needs_sandbox} - set(routes)
        if missing:
            raise ValueError(f"tool groups {sorted(missing)} have no template; route them in "
                             "SANDGATE_TOOL_TEMPLATES")
        self._routes = dict(routes)
        self._allowlist = allowlist or Allowlist()
        self._upstream_tools = upstream_tools or (lambda: ())
        # name -> (the schema it was built from, its validator or None)
        self._validators: dict[str, tuple[object, jsonschema.protocols.Validator | None]] = {}

    def _all(self) -> dict[str, ToolSpec]:
        tools = dict(self._builtin)
        for spec in self._upstream_tools():
            if spec.name in tools:
                logger.warning("upstream tool %s is shadowed by a built-in tool", spec.name)
                continue
            tools[spec.name] = spec
        return tools

    def _visible(self, spec: ToolSpec, tenant: str) -> bool:
        return ((spec.tenants is None or tenant in spec.tenants)
                and self._allowlist.allows(tenant, spec.name))

    def list_for(self, tenant: str) -> list[ToolSpec]:
        """The tools ``tenant`` may see, sorted by name."""
        return sorted((s for s in self._all().values() if self._visible(s, tenant)),
                      key=lambda s: s.name)

    def resolve(self, tenant: str, name: str) -> ToolSpec:
        """The tool ``tenant`` asked for.

        Raises:
            ToolNotFoundError: no such tool, or the tenant may not use it.
        """
        spec = self._builtin.get(name)
        if spec is None:
            spec = next((s for s in self._upstream_tools() if s.name == name), None)
        if spec is None or not self._visible(spec, tenant):
            raise ToolNotFoundError(name)
        return spec

    def _any_tenant(self, name: str) -> ToolSpec | None:
        return self._builtin.get(name) or next(
            (s for s in self._upstream_tools() if s.name == name), None)

    def input_schema(self, name: str) -> Mapping[str, Any] | None:
        """A tool's input schema by name, for any tenant (MCP header validation); read-only."""
        spec = self._any_tenant(name)
        return spec.input_schema if spec is not None else None

    def knows(self, name: str) -> bool:
        """Whether any tenant has a tool of this name."""
        return self._any_tenant(name) is not None

    def template_for(self, spec: ToolSpec) -> str:
        return self._routes[spec.group]

    def check_arguments(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> None:
        """Validate arguments against the tool's schema.

        Raises:
            ToolArgumentsError: what is wrong, and what the tool expects.
        """
        cached = self._validators.get(spec.name)
        if cached is None or cached[0] is not spec.input_schema:
            built: jsonschema.protocols.Validator | None
            try:
                cls = jsonschema.validators.validator_for(spec.input_schema)
                cls.check_schema(spec.input_schema)
                built = cls(spec.input_schema)
            except jsonschema.SchemaError:
                # An upstream's broken schema: let the upstream judge its arguments.
                logger.warning("tool %s has an invalid input schema; not validating", spec.name)
                built = None
            cached = self._validators[spec.name] = (spec.input_schema, built)
        validator = cached[1]
        if validator is None:
            return
        error = jsonschema.exceptions.best_match(validator.iter_errors(dict(arguments)))
        if error is None:
            return
        where = "/".join(str(p) for p in error.absolute_path)
        raise ToolArgumentsError(
            f"invalid arguments for {spec.name}: {f'{where}: ' if where else ''}{error.message}. "
            f"Expected: {_describe_expected(spec.input_schema)}")
