"""API keys: parsing, tenant resolution, service keys acting for a tenant."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sandgate.service.keys import (
    DEFAULT_TENANT,
    ApiKeySettings,
    Authenticator,
    Principal,
    UnauthenticatedError,
    parse_api_keys,
)

AUTH = Authenticator({"k1": "acme", "k2": "globex", "svc": DEFAULT_TENANT}, frozenset({"svc"}))


def test_keys_parse_to_tenants_and_the_service_key_is_the_default_tenant() -> None:
    assert parse_api_keys(" k1=acme, k2 = globex ,", "svc") == {
        "k1": "acme", "k2": "globex", "svc": DEFAULT_TENANT}
    assert parse_api_keys("") == {}


@pytest.mark.parametrize("raw", ["just-a-key", "=acme", "k1=", "k1=acme,k2"])
def test_a_malformed_key_entry_says_how_it_should_look(raw: str) -> None:
    with pytest.raises(ValueError, match="key=tenant") as caught:
        parse_api_keys(raw)
    assert "API key entry" in str(caught.value)


def test_a_service_key_must_also_be_a_key() -> None:
    with pytest.raises(ValueError, match="service key"):
        Authenticator({"k1": "acme"}, frozenset({"svc"}))


def test_without_keys_everyone_is_the_default_tenant_with_one_local_session() -> None:
    open_auth = Authenticator({})
    assert open_auth.open
    principal = open_auth.authenticate(None, "globex")
    assert principal == Principal(DEFAULT_TENANT) and principal.default_session == "local"


def test_a_known_key_names_its_tenant_and_an_id_that_does_not_reveal_it() -> None:
    principal = AUTH.authenticate("Bearer k2")
    assert principal.tenant == "globex" and not AUTH.open
    assert principal.key_id and "k2" not in principal.key_id
    assert principal.default_session == f"key-{principal.key_id}"
    assert AUTH.authenticate("  bearer   k2 ") == principal


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer  ", "Basic k1", "k1",
                                    "Bearer wrong", "Bearer k1x"])
def test_missing_or_unknown_keys_are_refused_without_echoing_them(header: str | None) -> None:
    with pytest.raises(UnauthenticatedError) as caught:
        AUTH.authenticate(header)
    assert "k1" not in str(caught.value) and "wrong" not in str(caught.value)


def test_only_a_service_key_may_act_for_another_tenant() -> None:
    acting = AUTH.authenticate("Bearer svc", "globex")
    assert acting.tenant == "globex"
    assert acting.key_id == AUTH.authenticate("Bearer svc").key_id
    with pytest.raises(UnauthenticatedError, match="service key"):
        AUTH.authenticate("Bearer k1", "globex")


def test_grpc_metadata_is_read_like_http_headers() -> None:
    assert AUTH.authenticate_metadata([("authorization", "Bearer k1")]).tenant == "acme"
    acting: list[tuple[str, str | bytes]] = [
        ("authorization", b"Bearer svc"), ("x-sandgate-tenant", b"globex"),
        ("user-agent", "grpc-python")]
    assert AUTH.authenticate_metadata(acting).tenant == "globex"
    for metadata in (None, [], [("authorization", "Bearer nope")],
                     [("authorization", "Bearer k1"), ("x-sandgate-tenant", "globex")]):
        with pytest.raises(UnauthenticatedError):
            AUTH.authenticate_metadata(metadata)


def test_error_messages_name_the_credential_callers_know() -> None:
    sandbox = Authenticator({"tok": "sandbox"}, credential="sandbox token")
    with pytest.raises(UnauthenticatedError, match="sandbox token"):
        sandbox.authenticate_metadata([])
    with pytest.raises(UnauthenticatedError, match="unknown sandbox token"):
        sandbox.authenticate("Bearer nope")


@dataclass
class Settings(ApiKeySettings):
    """Stands for a service's pydantic settings (which declare both fields)."""

    api_keys: str = ""
    bearer_token: str = ""


def test_settings_give_every_service_the_same_keys_and_service_key() -> None:
    settings = Settings("k1=acme", "svc")
    assert settings.tenant_keys() == {"k1": "acme", "svc": DEFAULT_TENANT}
    assert settings.service_keys() == frozenset({"svc"})
    assert settings.authenticator().authenticate("Bearer svc", "globex").tenant == "globex"
    assert Settings().authenticator().open and Settings().service_keys() == frozenset()
