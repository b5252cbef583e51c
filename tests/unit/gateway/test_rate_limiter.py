"""RateLimiter: a token bucket per tenant."""

from __future__ import annotations

import pytest

from gateway.ratelimit import RateLimiter


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_tenant_may_burst_then_waits_for_tokens_to_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=2.0, burst=3, clock=clock)
    assert [limiter.acquire("acme") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("acme") == pytest.approx(0.5)
    clock.now += 0.5
    assert limiter.acquire("acme") == 0.0


def test_tenants_have_separate_buckets() -> None:
    limiter = RateLimiter(rate=1.0, burst=1, clock=Clock())
    assert limiter.acquire("acme") == 0.0
    assert limiter.acquire("acme") > 0
    assert limiter.acquire("globex") == 0.0


def test_a_zero_rate_disables_the_limit() -> None:
    limiter = RateLimiter(rate=0.0, burst=1)
    assert not limiter.enabled
    assert all(limiter.acquire("acme") == 0.0 for _ in range(1000))
