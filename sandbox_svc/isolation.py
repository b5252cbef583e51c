"""What separates a template's sandboxes from the host, as the backend enforces it.

The backend that runs a template answers with an ``Isolation`` (the local
backend: bubblewrap namespaces, an unprivileged inner uid, a seccomp profile,
no nested user namespaces, the network policy); ListTemplates shows it, so a
user sees the isolation in force, not the one intended.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NETWORK_EGRESS", "NETWORK_NONE", "Isolation"]

NETWORK_NONE = "none"
"""Only the sandbox's own loopback interface."""
NETWORK_EGRESS = "egress"
"""Outbound traffic through a user-mode network; host loopback, private and
metadata ranges blocked except the template's allowlist."""


@dataclass(frozen=True)
class Isolation:
    """The isolation of every sandbox made from one template."""

    runtime: str
    """What creates the sandbox (``bubblewrap`` locally)."""
    namespaces: tuple[str, ...]
    """Kernel namespaces the sandbox has of its own."""
    inner_uid: int
    """The uid processes run as inside."""
    seccomp_profile: str
    """The syscall filter every process runs under."""
    user_namespaces_disabled: bool
    """Processes inside cannot create further user namespaces."""
    network_policy: str
    """``none`` or ``egress``."""
    network_allow: tuple[str, ...] = ()
    """``HOST:PORT`` destinations reachable despite the egress blocks."""

