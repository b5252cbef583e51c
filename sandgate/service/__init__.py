"""The service kit: what every Sandgate server needs, written once.

- :mod:`.keys`: API keys -> tenants (:class:`~.keys.Authenticator`, service keys
  acting for a tenant), for HTTP headers and gRPC metadata alike.
- :mod:`.binding`: loopback only while no key is configured.
- :mod:`.boundary`: the gRPC error boundary (domain error -> status by one
  table per server; INTERNAL with a request id for anything else).
- :mod:`.assembly`: a grpc.aio server with health, reflection and the boundary;
  start, and stop on SIGINT/SIGTERM in the graceful order.
- :mod:`.metrics`: Prometheus ``/metrics`` on a port of its own.

Import the modules themselves (``from sandgate.service.keys import ...``): this
package imports none of them, so sandboxd, which starts inside every sandbox,
loads only what it uses (never prometheus_client). Services depend on the kit;
the kit imports no service.
"""

from __future__ import annotations

__all__: list[str] = []
