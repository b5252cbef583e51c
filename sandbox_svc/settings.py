"""Configuration of sandbox_svc: the one place that reads the environment.

Every field reads ``SANDGATE_<NAME>``; fields that AgentScope Runtime's sandbox
server also had accept its key too (``PORT``, ``POOL_SIZE``, ...), so an
existing ``custom.env`` works with ``sandgate sandbox-server --config custom.env``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from sandgate.service.keys import ApiKeySettings
from sandgate.service.ports import ListenPort

__all__ = ["SandboxServiceSettings", "default_state_dir"]


def default_state_dir() -> Path:
    if os.geteuid() == 0:
        return Path("/var/lib/sandgate")
    return Path.home() / ".local" / "state" / "sandgate"


def _alias(name: str, *seed: str) -> AliasChoices:
    return AliasChoices(f"SANDGATE_{name}", *seed)


class SandboxServiceSettings(BaseSettings, ApiKeySettings):
    """Settings of the control plane, with AgentScope-compatible aliases."""

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", validation_alias=_alias("HOST", "HOST"))
    """Address the gRPC server binds; forced to 127.0.0.1 when no API key is set."""
    port: ListenPort = Field(8002, validation_alias=_alias("SANDBOX_PORT", "PORT"))
    """gRPC port of SandboxService (0 picks a free one)."""
    state_dir: Path = Field(
        default_factory=default_state_dir,
        validation_alias=_alias("STATE_DIR", "DEFAULT_MOUNT_DIR"),
    )
    """Registry database, sandbox workspaces and run directories."""
    templates_file: Path | None = Field(None, validation_alias=_alias("TEMPLATES_FILE"))
    """YAML file with more templates (see sandbox_svc/templates.py)."""
    default_template: str = Field(
        "base", validation_alias=_alias("DEFAULT_TEMPLATE", "DEFAULT_SANDBOX_TYPE")
    )
    pool_size: int | None = Field(None, validation_alias=_alias("POOL_SIZE", "POOL_SIZE"))
    """Warm sandboxes per template; overrides every template's own pool_size."""
    max_sandboxes: int = Field(64, validation_alias=_alias("MAX_SANDBOXES"))
    """Most live sandboxes (pooled included); more answer RESOURCE_EXHAUSTED."""
    api_keys: str = Field("", validation_alias=_alias("API_KEYS"))
    """Comma-separated ``key=tenant`` pairs accepted as ``authorization: Bearer key``."""
    bearer_token: str = Field("", validation_alias=_alias("BEARER_TOKEN", "BEARER_TOKEN"))
    """A service key (tenant ``default``) that may also act for any tenant."""
    auto_cleanup: bool = Field(True, validation_alias=_alias("AUTO_CLEANUP", "AUTO_CLEANUP"))
    """Delete all sandboxes on a graceful stop; False keeps them for the next start."""
    deployment: Literal["local", "k8s"] = Field(
        "local", validation_alias=_alias("DEPLOYMENT", "CONTAINER_DEPLOYMENT")
    )
    id_prefix: str = Field("sbx-", validation_alias=_alias("ID_PREFIX", "CONTAINER_PREFIX_KEY"))
    uid_base: int = Field(200_000, validation_alias=_alias("UID_BASE"))
    """Local backend: host uids uid_base .. uid_base+max_sandboxes-1 run the sandboxes."""
    zygote: bool = Field(True, validation_alias=_alias("ZYGOTE"))
    """Local backend: fork sandboxd from a pre-imported zygote into each new sandbox
    (bwrap still builds every sandbox); False starts sandboxd afresh in each."""
    reap_interval_s: float = Field(5.0, validation_alias=_alias("REAP_INTERVAL_S"))
    metrics_port: ListenPort | None = Field(None, validation_alias=_alias("SANDBOX_METRICS_PORT"))
    """Prometheus /metrics port; unset disables the endpoint."""
    redis_enabled: bool = Field(False, validation_alias=_alias("REDIS_ENABLED", "REDIS_ENABLED"))
    k8s_namespace: str = Field("default", validation_alias=_alias("K8S_NAMESPACE", "K8S_NAMESPACE"))
    """Kubernetes: the namespace of the sandbox Pods, their Secrets and NetworkPolicies."""
    kubeconfig_path: Path | None = Field(
        None, validation_alias=_alias("KUBECONFIG_PATH", "KUBECONFIG_PATH"))
    """Kubernetes: a kubeconfig; unset means in-cluster config, else ~/.kube/config."""
    k8s_sandbox_image: str = Field("sandgate/sandbox:0.1.0",
                                   validation_alias=_alias("K8S_SANDBOX_IMAGE"))
    """Kubernetes: the image of templates without ``kubernetes.image``."""
    k8s_sandboxd_port: int = Field(8080, validation_alias=_alias("K8S_SANDBOXD_PORT"))
    k8s_services_namespace: str = Field("sandgate",
                                        validation_alias=_alias("K8S_SERVICES_NAMESPACE"))
    """Kubernetes: where the gateway and sandbox-svc run (the only Pods let in)."""
    k8s_cluster_cidrs: str = Field("", validation_alias=_alias("K8S_CLUSTER_CIDRS"))
    """Kubernetes: comma-separated IPv4 ranges networked sandboxes must not reach beyond
    the private, link-local and metadata ones (your Pod/Service CIDRs if public)."""
    k8s_start_timeout_s: float = Field(90.0, validation_alias=_alias("K8S_START_TIMEOUT_S"))
    """Kubernetes: how long a sandbox Pod may take to become Ready (image pull included)."""
    k8s_reconcile_interval_s: float = Field(
        30.0, validation_alias=_alias("K8S_RECONCILE_INTERVAL_S"))
    """Kubernetes: how often leftovers of crashed replicas are looked for."""

    @field_validator("id_prefix")
    @classmethod
    def _short_prefix(cls, value: str) -> str:
        if len(value) > 12 or not all(c.isalnum() or c in "-_" for c in value):
            raise ValueError("id prefix must be at most 12 letters, digits, '-' or '_'")
        return value

    @field_validator("max_sandboxes")
    @classmethod
    def _positive(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("max_sandboxes must be in [1, 10000]")
        return value

    @classmethod
    def load(cls, env_file: Path | None = None) -> SandboxServiceSettings:
        """Settings from the environment, with ``env_file`` (seed-style keys) beneath it."""
        if env_file is not None and not env_file.is_file():
            raise FileNotFoundError(f"config file {env_file} does not exist")
        return cls(_env_file=env_file)
