"""Configuration of the agent service: the one place that reads its environment.

Every field reads ``SANDGATE_<NAME>``; the keys shared with the other services
(``SANDGATE_API_KEYS``, ``BEARER_TOKEN``) mean the same thing there, so one env
file configures ``sandgate up``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandgate.service.keys import ApiKeySettings
from sandgate.service.ports import ListenPort

__all__ = ["AgentSettings", "default_state_dir"]


def default_state_dir() -> Path:
    """``/var/lib/sandgate`` for root, else ``~/.local/state/sandgate`` (as sandbox_svc)."""
    if os.geteuid() == 0:
        return Path("/var/lib/sandgate")
    return Path.home() / ".local" / "state" / "sandgate"


def _alias(name: str, *more: str) -> AliasChoices:
    return AliasChoices(f"SANDGATE_{name}", *more)


class AgentSettings(BaseSettings, ApiKeySettings):
    """Settings of agent_svc (``sandgate agent-server`` and ``AgentApp.run``)."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    app: str = Field("", validation_alias=_alias("AGENT_APP"))
    """The app to serve, as ``module:attribute`` (an :class:`AgentApp`)."""
    host: str = Field("127.0.0.1", validation_alias=_alias("AGENT_HOST"))
    """Address of the HTTP and gRPC listeners; forced to 127.0.0.1 without keys."""
    port: ListenPort = Field(8090, validation_alias=_alias("AGENT_PORT"))
    """HTTP: ``/process``, health, custom endpoints, tasks (0 picks a free port)."""
    grpc_port: ListenPort | None = Field(8003, validation_alias=_alias("AGENT_GRPC_PORT"))
    """``sandgate.agent.v1.AgentService`` (0 picks a free port; unset disables it)."""
    api_keys: str = Field("", validation_alias=_alias("AGENT_API_KEYS", "SANDGATE_API_KEYS"))
    """Comma-separated ``key=tenant`` pairs accepted as ``Authorization: Bearer key``."""
    bearer_token: str = Field("", validation_alias=_alias("BEARER_TOKEN", "BEARER_TOKEN"))
    """Service key: tenant ``default``; may act for the tenant in ``x-sandgate-tenant``."""
    state_dir: Path = Field(default_factory=default_state_dir,
                            validation_alias=_alias("AGENT_STATE_DIR", "SANDGATE_STATE_DIR"))
    """Where the embedded task queue and the SQLite services keep their files."""
    history: str = Field("sqlite", validation_alias=_alias("AGENT_HISTORY"))
    """Session history the server records runs into, for an app that brings none:
    ``sqlite`` (``<state_dir>/agent.db``), ``memory``, ``redis://...`` or ``none``."""
    task_broker: str = Field("", validation_alias=_alias("TASK_BROKER"))
    """``redis://host:port/db``: run tasks on Celery workers; empty runs them in-process
    on the durable SQLite queue (``<state_dir>/agent-tasks.db``)."""
    task_backend: str = Field("", validation_alias=_alias("TASK_BACKEND"))
    """Celery result backend; empty means the broker."""
    task_concurrency: int = Field(4, validation_alias=_alias("TASK_CONCURRENCY"))
    """Tasks the embedded queue runs at once."""
    max_request_bytes: int = Field(4 * 1024 * 1024,
                                   validation_alias=_alias("AGENT_MAX_REQUEST_BYTES"))
    """Largest request body accepted (HTTP 413 / gRPC RESOURCE_EXHAUSTED)."""

    @field_validator("task_concurrency")
    @classmethod
    def _concurrency(cls, value: int) -> int:
        if not 1 <= value <= 256:
            raise ValueError("task concurrency must be between 1 and 256")
        return value

    @field_validator("history")
    @classmethod
    def _history(cls, value: str) -> str:
        if value not in ("sqlite", "memory", "none") and not value.startswith(
                ("redis://", "rediss://", "unix://")):
            raise ValueError("history must be sqlite, memory, none or a redis:// URL")
        return value

    @field_validator("task_broker")
    @classmethod
    def _broker(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("the task broker must be a redis:// URL (or empty for the "
                             "embedded queue)")
        return value

    @classmethod
    def load(cls, env_file: Path | None = None) -> AgentSettings:
        """Settings from the environment, with ``env_file`` beneath it.

        Raises:
            FileNotFoundError: ``env_file`` does not exist.
        """
        if env_file is not None and not env_file.is_file():
            raise FileNotFoundError(f"config file {env_file} does not exist")
        return cls(_env_file=env_file)
