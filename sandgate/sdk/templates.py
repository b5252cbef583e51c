"""What a template is, as the control plane reports it: tools, limits, isolation.

::

    for template in await AsyncSandbox.list_templates():
        print(template.name, template.isolation.summary())
"""

from __future__ import annotations

from dataclasses import dataclass

from sandgate.sandbox.v1 import sandbox_service_pb2 as pb

__all__ = ["IsolationInfo", "TemplateInfo", "template_info"]


@dataclass(frozen=True)
class IsolationInfo:
    """The isolation in force for every sandbox of a template."""

    runtime: str
    namespaces: tuple[str, ...]
    inner_uid: int
    seccomp_profile: str
    user_namespaces_disabled: bool
    network_policy: str
    network_allow: tuple[str, ...]

    def summary(self) -> str:
        """One line, for example ``bubblewrap; namespaces user,mount,...; uid 65534;
        seccomp default; user namespaces disabled; network none``."""
        network = self.network_policy or "?"
        if self.network_allow:
            network += f" (allow {', '.join(self.network_allow)})"
        return "; ".join([
            self.runtime or "?",
            f"namespaces {','.join(self.namespaces) or '-'}",
            f"uid {self.inner_uid}",
            f"seccomp {self.seccomp_profile or 'none'}",
            "user namespaces " + ("disabled" if self.user_namespaces_disabled else "allowed"),
            f"network {network}",
        ])


@dataclass(frozen=True)
class TemplateInfo:
    """One template a sandbox can be made from."""

    name: str
    description: str
    tool_groups: tuple[str, ...]
    pool_size: int
    isolation: IsolationInfo


def template_info(message: pb.Template) -> TemplateInfo:
    """The SDK's view of a ``Template`` message."""
    iso = message.isolation
    return TemplateInfo(
        name=message.name, description=message.description,
        tool_groups=tuple(message.tool_groups), pool_size=message.pool_size,
        isolation=IsolationInfo(
            runtime=iso.runtime, namespaces=tuple(iso.namespaces), inner_uid=iso.inner_uid,
            seccomp_profile=iso.seccomp_profile,
            user_namespaces_disabled=iso.user_namespaces_disabled,
            network_policy=iso.network_policy, network_allow=tuple(iso.network_allow)))
