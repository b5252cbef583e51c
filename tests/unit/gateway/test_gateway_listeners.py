"""Every gateway listener refuses a busy port at start instead of sharing it."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from gateway_fakes import FakeControl

from gateway.server import build_gateway
from gateway.settings import GatewaySettings
from sandgate.service.assembly import ListenError


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        yield int(squatter.getsockname()[1])


@pytest.mark.parametrize("listener", ["port", "grpc_port"])
async def test_a_gateway_on_a_busy_port_fails_at_start_naming_the_port(
        busy_port: int, listener: str) -> None:
    ports = {"port": 0, "grpc_port": 0, listener: busy_port}
    settings = GatewaySettings(host="127.0.0.1", api_keys="", bearer_token="", **ports)
    with pytest.raises(ListenError, match=f"127.0.0.1:{busy_port}"):
        await build_gateway(settings, control=FakeControl())
