"""Sandbox templates: what a sandbox is (tools, limits, pool, lifetime).

Built in: ``base`` (shell + Python) and ``filesystem`` (base + file tools).
More (or overrides) come from a YAML file::

    templates:
      - name: data
        description: Python with more memory
        tool_groups: [base, filesystem]
        memory_mb: 2048
        pool_size: 1
        seccomp: default        # the syscall filter: one of SECCOMP_PROFILES
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from sandbox_svc.errors import InvalidRequestError, TemplateNotFoundError
from sandbox_svc.pod_settings import PodSettings, parse_pod_settings

__all__ = [
    "BUILTIN_TEMPLATES",
    "HOST_LOOPBACK",
    "SECCOMP_PROFILES",
    "AllowRule",
    "Template",
    "TemplateCatalog",
    "load_templates",
    "parse_allow",
]

_KNOWN_TOOL_GROUPS = frozenset({"base", "filesystem", "browser"})
HOST_LOOPBACK = "10.0.2.2"  # how a networked sandbox reaches the host's 127.0.0.1
SECCOMP_PROFILES = ("default", "browser")
"""Syscall filters a template can name; each backend maps every one of them."""


@dataclass(frozen=True)
class AllowRule:
    """One destination a networked sandbox may reach despite the default blocks."""

    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def parse_allow(entry: str) -> AllowRule:
    """``HOST:PORT`` with HOST an IPv4 address or ``host-loopback``."""
    host, sep, port_text = entry.rpartition(":")
    allowed = "allowlist entries look like 203.0.113.7:443 or host-loopback:8080"
    if not sep or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InvalidRequestError(f"bad allowlist entry {entry!r}: {allowed}")
    if host == "host-loopback":
        host = HOST_LOOPBACK
    try:
        address = ipaddress.IPv4Address(host)
    except ValueError:
        raise InvalidRequestError(f"bad allowlist entry {entry!r}: {allowed}") from None
    return AllowRule(str(address), int(port_text))


@dataclass(frozen=True)
class Template:
    """One kind of sandbox."""

    name: str
    description: str = ""
    tool_groups: tuple[str, ...] = ("base",)
    memory_mb: int = 512
    """Memory limit (RAM + swap) for all processes of the sandbox."""
    max_pids: int = 256
    """Most processes and threads alive at once (stops fork bombs)."""
    cpu_millis: int = 1000
    """CPU time per wall second in thousandths of a core."""
    pool_size: int = 1
    """Ready, unbound sandboxes kept warm."""
    default_ttl_s: int = 3600
    """Lifetime unless renewed."""
    idle_timeout_s: int = 900
    """A bound sandbox with no activity for this long is reaped."""
    network: bool = False
    """Egress through a user-mode network; host loopback, private and metadata
    ranges stay blocked unless listed in ``allow``."""
    allow: tuple[str, ...] = ()
    """``HOST:PORT`` destinations reachable despite the blocks (needs network)."""
    rootfs: str | None = None
    """A directory tree used instead of the host's system paths (read-only)."""
    labels: Mapping[str, str] = field(default_factory=dict)
    kubernetes: PodSettings = field(default_factory=PodSettings)
    """What the template's Pods get on Kubernetes (``kubernetes:`` block; see
    sandbox_svc/pod_settings.py); the local backend ignores it."""
    seccomp: str = "default"
    """The seccomp profile every process of the sandbox runs under (SECCOMP_PROFILES)."""
    warm_kernel: bool = False
    """Start the Python kernel while the sandbox waits in the pool, so a claimed
    sandbox's first cell runs on it (costs the kernel's memory while idle)."""

    def allow_rules(self) -> list[AllowRule]:
        return [parse_allow(entry) for entry in self.allow]

    def validate(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise InvalidRequestError(
                f"template name {self.name!r} must be non-empty letters, digits, '-' or '_'"
            )
        unknown = set(self.tool_groups) - _KNOWN_TOOL_GROUPS
        if unknown:
            raise InvalidRequestError(
                f"template {self.name!r}: unknown tool groups {sorted(unknown)}; "
                f"allowed: {sorted(_KNOWN_TOOL_GROUPS)}"
            )
        if self.seccomp not in SECCOMP_PROFILES:
            raise InvalidRequestError(
                f"template {self.name!r}: unknown seccomp profile {self.seccomp!r}; "
                f"allowed: {', '.join(SECCOMP_PROFILES)}"
            )
        checks = [
            ("memory_mb", self.memory_mb, 32, 1 << 20),
            ("max_pids", self.max_pids, 8, 1 << 16),
            ("cpu_millis", self.cpu_millis, 10, 256_000),
            ("pool_size", self.pool_size, 0, 1000),
            ("default_ttl_s", self.default_ttl_s, 1, 30 * 86400),
            ("idle_timeout_s", self.idle_timeout_s, 1, 30 * 86400),
        ]
        for key, value, low, high in checks:
            if not low <= value <= high:
                raise InvalidRequestError(
                    f"template {self.name!r}: {key}={value} is out of range [{low}, {high}]"
                )
        if self.warm_kernel and "base" not in self.tool_groups:
            raise InvalidRequestError(
                f"template {self.name!r}: warm_kernel needs the 'base' tool group (the kernel)")
        rules = [parse_allow(entry) for entry in self.allow]
        if rules and not self.network:
            raise InvalidRequestError(
                f"template {self.name!r}: allow needs network: true")
        if self.rootfs is not None and not Path(self.rootfs, "usr").is_dir():
            raise InvalidRequestError(
                f"template {self.name!r}: rootfs {self.rootfs!r} has no usr/ directory"
            )
        self.kubernetes.validate(self.name)


BUILTIN_TEMPLATES: tuple[Template, ...] = (
    Template(
        name="base",
        description="Shell commands and a persistent Python kernel in /workspace.",
        tool_groups=("base",),
        warm_kernel=True,
    ),
    Template(
        name="filesystem",
        description="The base tools plus file tools confined to /workspace.",
        tool_groups=("base", "filesystem"),
        warm_kernel=True,
    ),
    Template(
        name="browser",
        description="Chromium driven by Playwright (browser_* tools), plus the base and file "
                    "tools; egress without host loopback, private or metadata addresses.",
        tool_groups=("base", "filesystem", "browser"),
        # Chromium renders with several processes: one core cannot navigate and
        # snapshot in under ~110 ms; two bring it near 70 ms.
        memory_mb=2048,
        max_pids=1024,
        cpu_millis=2000,
        network=True,
        seccomp="browser",
    ),
)


class TemplateCatalog:
    """The templates a service knows, by name."""

    def __init__(self, templates: Iterable[Template]) -> None:
        self._by_name: dict[str, Template] = {}
        for template in templates:
            template.validate()
            self._by_name[template.name] = template

    def get(self, name: str) -> Template:
        try:
            return self._by_name[name]
        except KeyError:
            raise TemplateNotFoundError(name, list(self._by_name)) from None

    def names(self) -> list[str]:
        return sorted(self._by_name)

    def all(self) -> list[Template]:
        return [self._by_name[n] for n in self.names()]

    def with_pool_size(self, size: int) -> TemplateCatalog:
        """A copy where every template keeps ``size`` warm sandboxes."""
        return TemplateCatalog(replace(t, pool_size=size) for t in self.all())


def _template_from_mapping(raw: Mapping[str, Any]) -> Template:
    allowed = set(Template.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise InvalidRequestError(
            f"template entry has unknown keys {sorted(unknown)}; allowed: {sorted(allowed)}"
        )
    values = dict(raw)
    for key in ("tool_groups", "allow"):
        if key in values:
            values[key] = tuple(values[key])
    if "kubernetes" in values:
        values["kubernetes"] = parse_pod_settings(str(values.get("name")), values["kubernetes"])
    try:
        return Template(**values)
    except TypeError as exc:
        raise InvalidRequestError(f"bad template entry {dict(raw)!r}: {exc}") from None


def load_templates(path: Path | None) -> TemplateCatalog:
    """The built-in templates, overridden and extended by the file at ``path``."""
    templates = {t.name: t for t in BUILTIN_TEMPLATES}
    if path is not None:
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidRequestError(f"cannot read templates file {path}: {exc}") from None
        entries = (doc or {}).get("templates", []) if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InvalidRequestError(
                f"templates file {path}: expected a mapping with a 'templates' list"
            )
        for raw in entries:
            if not isinstance(raw, dict):
                raise InvalidRequestError(f"templates file {path}: each entry must be a mapping")
            template = _template_from_mapping(raw)
            templates[template.name] = template
    return TemplateCatalog(templates.values())
