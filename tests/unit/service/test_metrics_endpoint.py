"""The /metrics endpoint refuses a busy port instead of sharing it."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry

from sandgate.service.assembly import ListenError
from sandgate.service.metrics import serve_metrics


def test_a_busy_metrics_port_is_a_listen_error_naming_it() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(ListenError, match=f"127.0.0.1:{port}"):
            serve_metrics(CollectorRegistry(), "127.0.0.1", port)


def test_a_free_port_serves_and_closes() -> None:
    endpoint = serve_metrics(CollectorRegistry(), "127.0.0.1", 0)
    assert endpoint.port > 0
    endpoint.close()
