"""Authenticator: bearer API keys to tenants."""

from __future__ import annotations

import pytest

from gateway.auth import Authenticator, Principal
from gateway.errors import UnauthenticatedError

AUTH = Authenticator({"k1": "acme", "svc": "default"}, frozenset({"svc"}))


def test_without_keys_everyone_is_the_default_tenant_with_one_local_session() -> None:
    principal = Authenticator({}).authenticate(None)
    assert principal == Principal("default") and principal.default_session == "local"


def test_a_known_key_names_its_tenant_and_a_session_that_does_not_reveal_it() -> None:
    principal = AUTH.authenticate("Bearer k1")
    assert principal.tenant == "acme"
    assert principal.default_session.startswith("key-") and "k1" not in principal.key_id


@pytest.mark.parametrize("header", [None, "", "Bearer", "Basic k1", "Bearer wrong"])
def test_missing_or_unknown_keys_are_refused(header: str | None) -> None:
    with pytest.raises(UnauthenticatedError):
        AUTH.authenticate(header)


def test_only_a_service_key_may_act_for_another_tenant() -> None:
    assert AUTH.authenticate("Bearer svc", "globex").tenant == "globex"
    with pytest.raises(UnauthenticatedError, match="service key"):
        AUTH.authenticate("Bearer k1", "globex")
