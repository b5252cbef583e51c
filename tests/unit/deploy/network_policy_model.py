"""A small model of Kubernetes NetworkPolicy semantics, to ask rendered policies
"may A connect to B on port P?" the way a conforming CNI would answer.

Covers what Sandgate's manifests use: pod and namespace selectors (matchLabels,
matchExpressions), ipBlock with except, numeric ports, default policyTypes.
Pods are matched by selectors only, outside addresses by ipBlock only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["External", "Pod", "allows"]

Policy = Mapping[str, Any]


@dataclass(frozen=True)
class Pod:
    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class External:
    address: str


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    if selector is None:
        return True
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
    return True


def _policy_types(policy: Policy) -> list[str]:
    spec = policy["spec"]
    if "policyTypes" in spec:
        return list(spec["policyTypes"])
    return ["Ingress", "Egress"] if "egress" in spec else ["Ingress"]


def _port_matches(ports: list[Mapping[str, Any]] | None, port: int, protocol: str) -> bool:
    if not ports:
        return True
    for entry in ports:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        low = entry["port"]
        if isinstance(low, int) and low <= port <= entry.get("endPort", low):
            return True
    return False


def _peer_matches(peers: list[Mapping[str, Any]] | None, policy_namespace: str,
                  peer: Pod | External) -> bool:
    if not peers:
        return True
    for entry in peers:
        if "ipBlock" in entry:
            if isinstance(peer, External):
                address = ipaddress.ip_address(peer.address)
                block = entry["ipBlock"]
                inside = address in ipaddress.ip_network(block["cidr"])
                excepted = any(address in ipaddress.ip_network(e)
                               for e in block.get("except", []))
                if inside and not excepted:
                    return True
            continue
        if isinstance(peer, External):
            continue
        namespace_selector = entry.get("namespaceSelector")
        if namespace_selector is None:
            namespace_ok = peer.namespace == policy_namespace
        else:
            namespace_ok = selects(namespace_selector,
                                   {"kubernetes.io/metadata.name": peer.namespace})
        if namespace_ok and selects(entry.get("podSelector"), peer.labels):
            return True
    return False


def _permitted(policies: Iterable[Policy], pod: Pod, direction: str, peer: Pod | External,
               port: int, protocol: str) -> bool:
    rules_key, peers_key = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    isolating = [p for p in policies
                 if p["metadata"]["namespace"] == pod.namespace
                 and direction in _policy_types(p)
                 and selects(p["spec"]["podSelector"], pod.labels)]
    if not isolating:
        return True
    for policy in isolating:
        for rule in policy["spec"].get(rules_key) or []:
            if (_port_matches(rule.get("ports"), port, protocol)
                    and _peer_matches(rule.get(peers_key), policy["metadata"]["namespace"],
                                      peer)):
                return True
    return False


def allows(policies: Iterable[Policy], source: Pod, destination: Pod | External, port: int,
           protocol: str = "TCP") -> bool:
    """Whether ``source`` may open a connection to ``destination`` on ``port``."""
    policies = list(policies)
    if not _permitted(policies, source, "Egress", destination, port, protocol):
        return False
    if isinstance(destination, External):
        return True
    return _permitted(policies, destination, "Ingress", source, port, protocol)
