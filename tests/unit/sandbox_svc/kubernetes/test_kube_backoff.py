"""Start back-off: failing templates wait exponentially longer, capped; success clears."""

from __future__ import annotations

import pytest

from sandbox_svc.errors import BackendError
from sandbox_svc.kubernetes.backoff import StartBackoff


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_failures_double_the_wait_up_to_the_cap_and_name_the_last_reason() -> None:
    clock = Clock()
    backoff = StartBackoff(base_s=2.0, cap_s=10.0, clock=clock)
    backoff.check("base")
    waits = []
    for n in range(5):
        backoff.failed("base", f"ImagePullBackOff #{n}")
        waits.append(backoff.waiting()["base"])
    assert waits == [2.0, 4.0, 8.0, 10.0, 10.0]
    with pytest.raises(BackendError, match="ImagePullBackOff #4"):
        backoff.check("base")
    backoff.check("browser")  # other templates are not held back


def test_after_the_wait_one_start_may_try_and_success_clears_the_back_off() -> None:
    clock = Clock()
    backoff = StartBackoff(base_s=2.0, cap_s=10.0, clock=clock)
    backoff.failed("base", "boom")
    clock.now += 2.5
    backoff.check("base")
    backoff.succeeded("base")
    backoff.failed("base", "boom again")
    assert backoff.waiting() == {"base": 2.0}  # counting starts over
