"""A tool call's JSON arguments, read with types and with both peers' names.

Unknown argument names are ignored (prompts written for either Playwright MCP
generation carry extras such as ``element`` or ``expectation``); a known one
that is missing or of the wrong type is a ``BrowserArgumentError`` whose
message names the argument and what it takes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence

from .errors import BrowserArgumentError

__all__ = ["Args", "parse_arguments"]

_MAX_ARGUMENTS_CHARS = 4 * 1024 * 1024


def parse_arguments(text: str) -> dict[str, object]:
    """Parse ``arguments_json``; empty text means no arguments.

    Raises:
        BrowserArgumentError: not JSON, or not a JSON object.
    """
    if not text.strip():
        return {}
    if len(text) > _MAX_ARGUMENTS_CHARS:
        raise BrowserArgumentError(
            f"arguments_json is {len(text)} characters; at most {_MAX_ARGUMENTS_CHARS} are allowed"
        )
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BrowserArgumentError(
            f"arguments_json is not valid JSON ({exc.msg} at character {exc.pos}); "
            'send a JSON object such as {"url": "https://example.com"}'
        ) from None
    if not isinstance(value, dict):
        raise BrowserArgumentError(
            f"arguments_json must be a JSON object, not {type(value).__name__}"
        )
    return value


class Args:
    """Typed access to one call's arguments."""

    def __init__(self, tool: str, values: Mapping[str, object]) -> None:
        self.tool = tool
        self._values = values

    def _get(self, names: Sequence[str]) -> tuple[str, object]:
        for name in names:
            value = self._values.get(name)
            if value is not None:
                return name, value
        return names[0], None

    def _bad(self, name: str, wanted: str) -> BrowserArgumentError:
        return BrowserArgumentError(f"{self.tool}: argument {name!r} must be {wanted}")

    def _missing(self, names: Sequence[str], what: str) -> BrowserArgumentError:
        spelled = " or ".join(repr(n) for n in names)
        return BrowserArgumentError(f"{self.tool} needs {spelled}: {what}")

    def has(self, name: str) -> bool:
        return name in self._values

    def string(self, *names: str) -> str | None:
        name, value = self._get(names)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self._bad(name, "a string")
        return value

    def required_string(self, *names: str, what: str) -> str:
        value = self.string(*names)
        if value is None:
            raise self._missing(names, what)
        return value

    def target(self, *names: str, what: str = "an element") -> str:
        """An element reference: 0.0.83's ``target`` or 0.0.25's ``ref`` (or a selector)."""
        names = names or ("target", "ref")
        value = self.string(*names)
        if not value or not value.strip():
            raise self._missing(
                names,
                f'{what}, as a ref from the last browser_snapshot (for example "e12") '
                "or a CSS selector",
            )
        return value.strip()

    def optional_target(self, *names: str) -> str | None:
        value = self.string(*(names or ("target", "ref")))
        return value.strip() if value and value.strip() else None

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self._values.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self._bad(name, "true or false")
        return value

    def number(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(name, "a number")
        if not math.isfinite(value):
            raise self._bad(name, "a finite number")
        return float(value)

    def integer(self, name: str) -> int | None:
        value = self.number(name)
        if value is None:
            return None
        if value != int(value):
            raise self._bad(name, "a whole number")
        return int(value)

    def choice(self, name: str, allowed: Sequence[str]) -> str | None:
        value = self.string(name)
        if value is not None and value not in allowed:
            raise self._bad(name, "one of " + ", ".join(repr(a) for a in allowed))
        return value

    def string_list(self, *names: str) -> list[str] | None:
        name, value = self._get(names)
        if value is None:
            return None
        if isinstance(value, str):
            return [value]  # a lone value where a list is expected: accept it
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(name, "a list of strings")
        return list(value)

    def string_map(self, name: str) -> dict[str, str] | None:
        value = self._values.get(name)
        if value is None:
            return None
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise self._bad(name, "an object mapping strings to strings")
        return dict(value)

    def objects(self, name: str) -> list[Args]:
        value = self._values.get(name)
        if value is None:
            raise self._missing((name,), "a list of objects")
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self._bad(name, "a list of objects")
        return [Args(f"{self.tool} {name}[{i}]", v) for i, v in enumerate(value)]
