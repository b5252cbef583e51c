"""Loopback only while no API key is configured."""

from __future__ import annotations

import logging

import pytest

from sandgate.service.binding import listen_host


def test_a_keyless_server_asked_for_all_addresses_binds_loopback_and_says_how_to_change_it(
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "sandgate.service.binding"):
        host = listen_host("0.0.0.0", keyed=False, server="gateway", keys_hint="SANDGATE_API_KEYS")
    assert host == "127.0.0.1"
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "0.0.0.0" in record.getMessage() and "SANDGATE_API_KEYS" in record.getMessage()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_a_keyless_server_on_loopback_keeps_its_address(host: str,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, "sandgate.service.binding"):
        assert listen_host(host, keyed=False, server="s", keys_hint="K") == host
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_a_keyed_server_binds_where_it_is_told() -> None:
    assert listen_host("0.0.0.0", keyed=True, server="s", keys_hint="K") == "0.0.0.0"
