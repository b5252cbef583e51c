"""Every service refuses a port outside [0, 65535] when its settings load, by name."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent_svc.settings import AgentSettings
from gateway.settings import GatewaySettings
from sandbox_svc.settings import SandboxServiceSettings


@pytest.mark.parametrize(("variable", "load"), [
    ("SANDGATE_GATEWAY_PORT", GatewaySettings),
    ("SANDGATE_GATEWAY_GRPC_PORT", GatewaySettings),
    ("SANDGATE_SANDBOX_PORT", SandboxServiceSettings),
    ("SANDGATE_SANDBOX_METRICS_PORT", SandboxServiceSettings),
    ("SANDGATE_AGENT_PORT", AgentSettings),
    ("SANDGATE_AGENT_GRPC_PORT", AgentSettings),
])
@pytest.mark.parametrize("value", ["-1", "65536"])
def test_a_port_out_of_range_is_refused_with_the_range(
        monkeypatch: pytest.MonkeyPatch, variable: str, load: type, value: str) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValidationError, match=r"port must be in \[0, 65535\].*got " + value):
        load()


@pytest.mark.parametrize("value", ["0", "65535"])
def test_the_ends_of_the_range_are_ports(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SANDGATE_SANDBOX_PORT", value)
    monkeypatch.setenv("SANDGATE_AGENT_GRPC_PORT", value)
    assert SandboxServiceSettings().port == AgentSettings().grpc_port == int(value)
