"""Prometheus ``/metrics`` on a port of its own, for servers without an HTTP face.

Kept apart from the rest of the kit so that what does not serve metrics (sandboxd,
inside every sandbox) never imports prometheus_client.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server

from sandgate.service.assembly import ListenError

__all__ = ["MetricsEndpoint", "serve_metrics"]


class MetricsEndpoint:
    """A running ``/metrics`` HTTP server (on a daemon thread)."""

    def __init__(self, server: WSGIServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> MetricsEndpoint:
    """Serve ``registry`` at ``http://host:port/metrics`` until ``close()``.

    Args:
        registry: the server's own metrics (one registry per server, so tests can
            run several servers in one process).
        host: the address to bind; pass the server's (loopback-checked) host.
        port: the port (0 picks a free one).

    Raises:
        ListenError: the port is in use or the address is not available here (the
            server does not share ports: no SO_REUSEPORT).
    """
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        raise ListenError(f"cannot listen on {host}:{port} for /metrics: {exc.strerror or exc}"
                          ) from exc
    return MetricsEndpoint(server, thread)
