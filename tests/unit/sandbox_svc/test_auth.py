from __future__ import annotations

import pytest

from sandbox_svc.auth import TenantResolver
from sandbox_svc.errors import UnauthenticatedError


def test_without_keys_everyone_is_the_default_tenant() -> None:
    assert TenantResolver({}).resolve([]) == "default"


def test_a_key_maps_to_its_tenant() -> None:
    resolver = TenantResolver({"k1": "acme", "k2": "globex"})
    assert resolver.resolve([("authorization", "Bearer k2")]) == "globex"


@pytest.mark.parametrize("metadata", [[], [("authorization", "Bearer nope")],
                                      [("authorization", "Basic k1")]])
def test_missing_or_unknown_key_is_unauthenticated(metadata: list[tuple[str, str]]) -> None:
    with pytest.raises(UnauthenticatedError):
        TenantResolver({"k1": "acme"}).resolve(metadata)


def test_only_a_service_key_may_act_for_another_tenant() -> None:
    resolver = TenantResolver({"svc": "default", "k1": "acme"}, frozenset({"svc"}))
    acting = [("authorization", "Bearer svc"), ("x-sandgate-tenant", "globex")]
    assert resolver.resolve(acting) == "globex"
    with pytest.raises(UnauthenticatedError):
        resolver.resolve([("authorization", "Bearer k1"), ("x-sandgate-tenant", "globex")])
