"""Configuration of the gateway: the one place that reads the environment.

Every field reads ``SANDGATE_<NAME>``; the keys shared with sandbox_svc
(``SANDGATE_API_KEYS``, ``BEARER_TOKEN``) mean the same thing there, so one
env file configures ``sandgate up``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandgate.service.keys import ApiKeySettings, parse_pairs
from sandgate.service.ports import ListenPort

__all__ = ["DEFAULT_TOOL_TEMPLATES", "GatewaySettings"]

DEFAULT_TOOL_TEMPLATES = "base=filesystem,filesystem=filesystem,browser=browser"
"""Base and filesystem tools share one sandbox per session, so files written with
write_file are there for run_shell_command; browser tools run in a browser sandbox."""


def _alias(name: str, *more: str) -> AliasChoices:
    return AliasChoices(f"SANDGATE_{name}", *more)


class GatewaySettings(BaseSettings, ApiKeySettings):
    """Settings of the tool gateway."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", validation_alias=_alias("GATEWAY_HOST"))
    """Address of the MCP HTTP and gRPC listeners; forced to 127.0.0.1 without keys."""
    port: ListenPort = Field(8000, validation_alias=_alias("GATEWAY_PORT"))
    """MCP over streamable HTTP at ``http://host:port/mcp`` (0 picks a free port)."""
    grpc_port: ListenPort = Field(8001, validation_alias=_alias("GATEWAY_GRPC_PORT"))
    """``sandgate.gateway.v1.ToolGateway`` (0 picks a free port)."""
    workers: int = Field(1, validation_alias=_alias("GATEWAY_WORKERS"))
    """Processes serving MCP HTTP on ``port`` (the kernel spreads connections over them,
    SO_REUSEPORT); the first also serves gRPC. More than 1 needs ``legacy_sessions`` off."""
    legacy_sessions: bool = Field(True, validation_alias=_alias("GATEWAY_LEGACY_SESSIONS"))
    """Keep MCP sessions (``Mcp-Session-Id``) of pre-2026 clients in memory. Off, such
    clients are served statelessly (a sandbox per ``X-Sandgate-Session`` or per key)."""
    api_keys: str = Field("", validation_alias=_alias("GATEWAY_API_KEYS", "SANDGATE_API_KEYS"))
    """Comma-separated ``key=tenant`` pairs accepted as ``Authorization: Bearer key``."""
    bearer_token: str = Field(
        "", validation_alias=_alias("BEARER_TOKEN", "BEARER_TOKEN"))
    """Service key: tenant ``default``, may act for the tenant in ``x-sandgate-tenant``,
    and is what the gateway presents to sandbox_svc unless ``sandbox_key`` is set."""
    sandbox_target: str = Field(
        "127.0.0.1:8002", validation_alias=_alias("SANDBOX_TARGET", "SANDGATE_TARGET"))
    """gRPC address of sandbox_svc (the control plane)."""
    sandbox_key: str = Field("", validation_alias=_alias("SANDBOX_KEY"))
    """Key presented to sandbox_svc; empty means ``bearer_token``."""
    tool_templates: str = Field(DEFAULT_TOOL_TEMPLATES,
                                validation_alias=_alias("TOOL_TEMPLATES"))
    """Which template serves each tool group, as ``group=template`` pairs."""
    tool_allowlist: dict[str, list[str]] = Field(
        default_factory=dict, validation_alias=_alias("TOOL_ALLOWLIST"))
    """Tenant -> tool name patterns it may list and call (JSON; ``*`` globs; the
    tenant ``*`` is the default). Tenants without an entry may use every tool."""
    rate_limit_per_s: float = Field(0.0, validation_alias=_alias("RATE_LIMIT"))
    """Requests per second per tenant (MCP POSTs, gRPC calls); 0 disables the limit."""
    rate_limit_burst: int = Field(0, validation_alias=_alias("RATE_BURST"))
    """Requests a tenant may make at once; 0 means twice the rate (at least 1)."""
    upstreams_file: Path | None = Field(None, validation_alias=_alias("UPSTREAMS_FILE"))
    """JSON or YAML file of upstream MCP servers (``mcpServers`` format)."""
    upstream_timeout_s: float = Field(30.0, validation_alias=_alias("UPSTREAM_TIMEOUT_S"))
    """Default time an upstream has to answer a call (per upstream: ``timeout_s``)."""
    session_idle_s: float = Field(900.0, validation_alias=_alias("SESSION_IDLE_S"))
    """A session's sandboxes are released after this long without a call."""
    progress_interval_s: float = Field(2.0, validation_alias=_alias("PROGRESS_INTERVAL_S"))
    """A call running this long sends a progress notification, and again each interval."""
    max_request_bytes: int = Field(4 * 1024 * 1024,
                                   validation_alias=_alias("MAX_REQUEST_BYTES"))
    """Largest MCP request body or gRPC message accepted (HTTP 413 / RESOURCE_EXHAUSTED)."""
    max_result_bytes: int = Field(1024 * 1024, validation_alias=_alias("MAX_RESULT_BYTES"))
    """Most text one tool result carries; longer output ends with a truncation marker."""
    audit_log: Path | None = Field(None, validation_alias=_alias("AUDIT_LOG"))
    """File the audit log (one JSON line per call) is appended to; unset logs it to the
    ``sandgate.audit`` logger."""

    @field_validator("workers")
    @classmethod
    def _workers(cls, value: int) -> int:
        if not 1 <= value <= 64:
            raise ValueError("workers must be between 1 and 64")
        return value

    @model_validator(mode="after")
    def _workers_share_no_sessions(self) -> GatewaySettings:
        if self.workers > 1 and self.legacy_sessions:
            raise ValueError(
                "SANDGATE_GATEWAY_WORKERS > 1 needs SANDGATE_GATEWAY_LEGACY_SESSIONS=false: a "
                "legacy Mcp-Session-Id session lives in one worker's memory, and the next "
                "request of that session may reach another worker")
        return self

    @field_validator("rate_limit_per_s", "session_idle_s", "upstream_timeout_s",
                     "progress_interval_s")
    @classmethod
    def _non_negative(cls, value: float) -> float:
        if value < 0:
            raise ValueError("must not be negative")
        return value

    @field_validator("max_request_bytes", "max_result_bytes")
    @classmethod
    def _size(cls, value: int) -> int:
        if not 1024 <= value <= 1 << 30:
            raise ValueError("sizes must be between 1 KiB and 1 GiB")
        return value

    def control_plane_key(self) -> str:
        return self.sandbox_key or self.bearer_token

    def template_routes(self) -> dict[str, str]:
        """Tool group -> template; groups not named keep the default routing."""
        routes = parse_pairs(DEFAULT_TOOL_TEMPLATES, "tool template", "group=template")
        routes.update(parse_pairs(self.tool_templates, "tool template", "group=template"))
        return routes

    def burst(self) -> int:
        return self.rate_limit_burst or max(1, int(2 * self.rate_limit_per_s))

    @classmethod
    def load(cls, env_file: Path | None = None) -> GatewaySettings:
        """Settings from the environment, with ``env_file`` beneath it."""
        if env_file is not None and not env_file.is_file():
            raise FileNotFoundError(f"config file {env_file} does not exist")
        return cls(_env_file=env_file)
