"""A value made on first use: sandboxd's start-up imports only what the first Exec needs.

The workspace files, the kernel and the browser each cost their modules'
import at start-up, on every sandbox's cold path, for calls that may never
come; the servicer holds them as :class:`Lazy` values, made on the first call
that needs them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Lazy"]

T = TypeVar("T")


class Lazy(Generic[T]):
    """One value, made by ``make`` on the first :meth:`get` (single-threaded: the event loop).

    Args:
        make: Builds the value; it may import what the value needs.
    """

    def __init__(self, make: Callable[[], T]) -> None:
        self._make: Callable[[], T] | None = make
        self._value: T | None = None

    @classmethod
    def of(cls, value: T) -> Lazy[T]:
        """A Lazy that already holds ``value``."""
        made: Lazy[T] = cls(lambda: value)
        made.get()
        return made

    def get(self) -> T:
        """The value, made now if this is the first use.

        Raises:
            Exception: what ``make`` raised (the next call tries again).
        """
        if self._make is not None:
            self._value = self._make()
            self._make = None
        return self._value  # type: ignore[return-value]  # made above: T itself may be None

    def peek(self) -> T | None:
        """The value if it was made, else None (e.g. to close only what was opened)."""
        return None if self._make is not None else self._value
