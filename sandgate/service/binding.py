"""Where a server may listen: loopback only while no API key protects it.

A server without keys lets every caller in as the ``default`` tenant, so it
must not be reachable from other machines: :func:`listen_host` moves it to
``127.0.0.1`` and says so, with the setting that lifts the restriction.
"""

from __future__ import annotations

import logging

__all__ = ["LOOPBACK_HOSTS", "is_loopback", "listen_host"]

logger = logging.getLogger(__name__)

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
"""The loopback names a server binds as given (and that browsers' Host headers carry)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is one of :data:`LOOPBACK_HOSTS`."""
    return host in LOOPBACK_HOSTS


def listen_host(host: str, *, keyed: bool, server: str, keys_hint: str) -> str:
    """The host a server binds: ``host`` when keys are configured or it is loopback,
    else ``127.0.0.1``.

    Args:
        host: the configured address.
        keyed: whether any API key is configured (callers must authenticate).
        server: the server's name, for the log line (``"gateway"``).
        keys_hint: what configures keys, for the log line
            (``"SANDGATE_API_KEYS or BEARER_TOKEN"``).

    Returns:
        The address to bind; logs a warning when it differs from ``host`` and a
        note when the server is keyless on loopback.
    """
    if keyed:
        return host
    if not is_loopback(host):
        logger.warning("%s: no API key configured, so it binds 127.0.0.1 instead of %s; set "
                       "%s to listen on other addresses", server, host, keys_hint)
        return "127.0.0.1"
    logger.info("%s: no API key configured: loopback only (%s)", server, host)
    return host
