"""GatewaySettings: environment names, defaults and validation."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.settings import GatewaySettings


def test_defaults_listen_on_loopback_8000_and_8001_and_share_one_sandbox_per_session() -> None:
    settings = GatewaySettings()
    assert (settings.host, settings.port, settings.grpc_port) == ("127.0.0.1", 8000, 8001)
    assert settings.template_routes() == {"base": "filesystem", "filesystem": "filesystem",
                                          "browser": "browser"}
    assert settings.tenant_keys() == {} and settings.rate_limit_per_s == 0


def test_environment_configures_keys_routes_allowlists_and_limits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_API_KEYS", "k1=acme, k2=globex")
    monkeypatch.setenv("BEARER_TOKEN", "service")
    monkeypatch.setenv("SANDGATE_TOOL_TEMPLATES", "base=base")
    monkeypatch.setenv("SANDGATE_TOOL_ALLOWLIST", '{"acme": ["run_*"]}')
    monkeypatch.setenv("SANDGATE_RATE_LIMIT", "5")
    monkeypatch.setenv("SANDGATE_TARGET", "sandboxes:8002")
    settings = GatewaySettings()
    assert settings.tenant_keys() == {"k1": "acme", "k2": "globex", "service": "default"}
    assert settings.service_keys() == frozenset({"service"})
    assert settings.control_plane_key() == "service"
    assert settings.template_routes() == {"base": "base", "filesystem": "filesystem",
                                          "browser": "browser"}
    assert settings.tool_allowlist == {"acme": ["run_*"]}
    assert settings.burst() == 10 and settings.sandbox_target == "sandboxes:8002"


def test_a_malformed_key_entry_says_how_it_should_look() -> None:
    with pytest.raises(ValueError, match="key=tenant"):
        GatewaySettings(api_keys="just-a-key").tenant_keys()


@pytest.mark.parametrize("field,value", [("port", 70000), ("rate_limit_per_s", -1),
                                         ("max_request_bytes", 10)])
def test_out_of_range_values_are_refused(field: str, value: float) -> None:
    with pytest.raises(ValidationError):
        GatewaySettings(**{field: value})  # type: ignore[arg-type]


def test_several_workers_need_legacy_sessions_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SANDGATE_GATEWAY_WORKERS", "2")
    with pytest.raises(ValidationError, match="SANDGATE_GATEWAY_LEGACY_SESSIONS=false"):
        GatewaySettings()
    monkeypatch.setenv("SANDGATE_GATEWAY_LEGACY_SESSIONS", "false")
    settings = GatewaySettings()
    assert (settings.workers, settings.legacy_sessions) == (2, False)
    assert GatewaySettings(**settings.model_dump()) == settings  # how workers get them


@pytest.mark.parametrize("workers", [0, 65])
def test_workers_are_between_1_and_64(workers: int) -> None:
    with pytest.raises(ValidationError, match="workers must be between 1 and 64"):
        GatewaySettings(workers=workers, legacy_sessions=False)
