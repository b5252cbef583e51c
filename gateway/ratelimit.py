"""Per-tenant rate limit: a token bucket per tenant."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Allows ``rate`` requests per second per tenant, with bursts up to ``burst``.

    A rate of 0 disables the limit.
    """

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, updated)

    @property
    def enabled(self) -> bool:
        return self._rate > 0

    def acquire(self, tenant: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds to wait before retrying."""
        if not self._rate:
            return 0.0
        now = self._clock()
        tokens, updated = self._buckets.get(tenant, (self._burst, now))
        tokens = min(self._burst, tokens + (now - updated) * self._rate)
        if tokens >= 1.0:
            self._buckets[tenant] = (tokens - 1.0, now)
            return 0.0
        self._buckets[tenant] = (tokens, now)
        return (1.0 - tokens) / self._rate
