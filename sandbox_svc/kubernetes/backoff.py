"""Per-template start back-off: a template whose Pods keep failing stops being retried.

After a failed start the template waits ``base_s`` before the next start may
try, doubling with each further failure up to ``cap_s``; one success clears
it. While a template waits, starts fail at once with the last failure's reason,
so a broken image costs one Pod per back-off period, not a Pod per second, and
an agent learns why at once instead of after another start timeout.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sandbox_svc.errors import BackendError

__all__ = ["StartBackoff"]

logger = logging.getLogger(__name__)


@dataclass
class _Failing:
    failures: int
    retry_at: float
    reason: str


class StartBackoff:
    """Exponential, capped back-off of failing templates.

    Args:
        base_s: the wait after the first failure.
        cap_s: the longest wait.
        clock: monotonic seconds (injected by tests).

    Raises:
        Nothing on construction.
    """

    def __init__(self, base_s: float = 2.0, cap_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._base_s = base_s
        self._cap_s = cap_s
        self._clock = clock
        self._failing: dict[str, _Failing] = {}

    def check(self, template: str) -> None:
        """Refuse a start of ``template`` while it backs off.

        Raises:
            BackendError: the template's last starts failed and its wait is not over.
        """
        failing = self._failing.get(template)
        if failing is None:
            return
        wait = failing.retry_at - self._clock()
        if wait > 0:
            raise BackendError(
                f"template {template!r} is backing off for {wait:.0f} s more after "
                f"{failing.failures} failed start(s); last: {failing.reason}")

    def failed(self, template: str, reason: str) -> None:
        """Count a failed start and lengthen the template's wait. Raises: nothing."""
        failing = self._failing.get(template)
        failures = 1 if failing is None else failing.failures + 1
        wait = min(self._base_s * 2 ** (failures - 1), self._cap_s)
        self._failing[template] = _Failing(failures, self._clock() + wait, reason)
        logger.warning("template %s: start failed (%d in a row), next try in %.0f s: %s",
                       template, failures, wait, reason)

    def succeeded(self, template: str) -> None:
        """Clear the template's back-off. Raises: nothing."""
        if self._failing.pop(template, None) is not None:
            logger.info("template %s starts again", template)

    def waiting(self) -> dict[str, float]:
        """Templates backing off now, with the seconds left. Raises: nothing."""
        now = self._clock()
        return {name: f.retry_at - now for name, f in self._failing.items() if f.retry_at > now}
