from __future__ import annotations

import pytest

from sandbox_svc.errors import InvalidRequestError
from sandbox_svc.local.network import firewall_rules
from sandbox_svc.templates import AllowRule, Template, parse_allow


def test_host_loopback_alias_maps_to_slirps_gateway() -> None:
    assert parse_allow("host-loopback:8080") == AllowRule("10.0.2.2", 8080)
    assert parse_allow("203.0.113.7:443") == AllowRule("203.0.113.7", 443)


@pytest.mark.parametrize("entry", ["example.com:80", "10.0.0.1", "1.2.3.4:0", "1.2.3.4:70000"])
def test_bad_allow_entries_say_what_is_allowed(entry: str) -> None:
    with pytest.raises(InvalidRequestError, match="host-loopback:8080"):
        parse_allow(entry)


def test_allow_without_network_is_rejected() -> None:
    with pytest.raises(InvalidRequestError, match="allow needs network"):
        Template(name="t", allow=("host-loopback:80",)).validate()


def test_allowed_destinations_are_accepted_before_the_blocks() -> None:
    rules = firewall_rules([AllowRule("10.0.2.2", 8080)])
    accept = rules.index("ip daddr 10.0.2.2 tcp dport 8080 accept")
    blocks = rules.index("ip daddr {")
    assert accept < blocks
    for blocked in ("169.254.0.0/16", "100.64.0.0/10", "10.0.0.0/8", "172.16.0.0/12",
                    "192.168.0.0/16", "127.0.0.0/8", "fe80::/10"):
        assert blocked in rules[blocks:]
