"""Glob search under a workspace directory.

A pattern is matched against each path relative to the searched directory:
``*`` and ``?`` stay within one name, ``**`` spans directories (``**/`` also
matches no directory at all), ``[...]`` is a character class. A pattern without
``/`` matches names at any depth, so ``*.py`` finds every Python file. Exclude
patterns follow the same rules; an excluded directory is not descended.
Symlinked directories are reported but not followed. Call from a worker thread.
"""

from __future__ import annotations

import os
import re
import stat
from collections import deque
from dataclasses import dataclass

from .errors import InvalidInputError, PathNotDirectoryError, PathNotFoundError
from .fileinfo import os_errors
from .limits import Limits
from .paths import Workspace

__all__ = ["GlobMatcher", "SearchResult", "search_files"]

_MAX_PATTERN_CHARS = 1024


@dataclass(frozen=True)
class SearchResult:
    paths: list[str]
    """Matching paths, spelled under /workspace, sorted."""
    truncated: bool
    """True when the search stopped at max_results (or the scan budget)."""


class GlobMatcher:
    """One glob, compiled; matches a relative path or, without '/', a name."""

    def __init__(self, pattern: str) -> None:
        cleaned = pattern.strip()
        while cleaned.startswith("./"):
            cleaned = cleaned[2:]
        cleaned = cleaned.lstrip("/")
        if not cleaned or len(cleaned) > _MAX_PATTERN_CHARS:
            raise InvalidInputError(
                f"glob pattern {pattern!r} is invalid; give a non-empty pattern of at most "
                f"{_MAX_PATTERN_CHARS} characters such as '*.py' or 'src/**/test_*'"
            )
        self._by_name = "/" not in cleaned
        self._regex = re.compile(_translate(cleaned))

    def matches(self, relative: str, name: str) -> bool:
        return self._regex.match(name if self._by_name else relative) is not None


def _translate(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "*":
            j = i
            while j < n and pattern[j] == "*":
                j += 1
            starts_name = i == 0 or pattern[i - 1] == "/"
            if j - i >= 2 and starts_name and j < n and pattern[j] == "/":
                out.append("(?:.*/)?")  # "**/": any number of directories, or none
                j += 1
            elif j - i >= 2:
                out.append(".*")
            else:
                out.append("[^/]*")
            i = j
            continue
        if char == "?":
            out.append("[^/]")
        elif char == "[":
            end = _class_end(pattern, i)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                body = body[1:] if negate else body
                body = body.replace("\\", "\\\\").replace("]", "\\]")
                out.append(f"[^/{body}]" if negate else f"(?!/)[{body}]")
                i = end + 1
                continue
        else:
            out.append(re.escape(char))
        i += 1
    return "(?s:" + "".join(out) + r")\Z"


def _class_end(pattern: str, start: int) -> int:
    j = start + 1
    if j < len(pattern) and pattern[j] in "!^":
        j += 1
    if j < len(pattern) and pattern[j] == "]":
        j += 1
    return pattern.find("]", j)


def search_files(
    workspace: Workspace,
    limits: Limits,
    path: str,
    pattern: str,
    exclude_patterns: list[str],
    max_results: int,
) -> SearchResult:
    """Walk ``path`` breadth-first and collect the paths that match ``pattern``."""
    matcher = GlobMatcher(pattern)
    excludes = [GlobMatcher(p) for p in exclude_patterns if p.strip()]
    wanted = min(max_results, limits.max_search_results) or limits.max_search_results
    real = workspace.resolve(path)
    shown = workspace.display(real)
    with os_errors(shown):
        if not real.is_dir():
            if not real.exists():
                raise PathNotFoundError(shown)
            raise PathNotDirectoryError(shown)
    top = os.fspath(real)
    found: list[str] = []
    scanned = 0
    truncated = False
    queue: deque[str] = deque([top])
    while queue and not truncated:
        directory = queue.popleft()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            continue  # unreadable: nothing to find there
        for entry in entries:
            scanned += 1
            if scanned > limits.max_scan_entries:
                truncated = True
                break
            relative = os.path.relpath(entry.path, top)
            if any(ex.matches(relative, entry.name) for ex in excludes):
                continue
            if matcher.matches(relative, entry.name):
                if len(found) >= wanted:
                    truncated = True
                    break
                found.append(workspace.display(entry.path))
            try:
                is_dir = stat.S_ISDIR(entry.stat(follow_symlinks=False).st_mode)
            except OSError:
                continue
            if is_dir:
                queue.append(entry.path)
    found.sort()
    return SearchResult(paths=found, truncated=truncated)
