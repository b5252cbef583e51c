"""The Python runtime sandboxd needs inside every sandbox: the venv and our sources.

Both are bound read-only into the sandbox by bwrap, which runs as an
unprivileged uid and so must be able to reach them. A checkout under a private
directory (mode 0700, e.g. a CI runner's temporary clone) is not reachable; then
the runtime is staged once into a world-searchable cache: the venv by hard
links (or copies across file systems), our small sources copied afresh.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxRuntimeFiles", "first_unsearchable_dir", "locate_runtime"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SandboxRuntimeFiles:
    venv: Path
    packages: tuple[Path, ...]


def first_unsearchable_dir(path: Path) -> Path | None:
    """The first of ``path`` and its parents that other users cannot search, if any."""
    return next((p for p in [path, *path.parents] if not p.stat().st_mode & stat.S_IXOTH),
                None)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    mode = os.stat(dst).st_mode
    if not mode & stat.S_IROTH:
        os.chmod(dst, mode | stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0))


def _open_dirs(root: Path) -> None:
    for dirpath, _, _ in os.walk(root):
        os.chmod(dirpath, 0o755)


def _stamp(venv: Path) -> str:
    parts = [str(venv)]
    for name in ("pyvenv.cfg", ".sandgate-installed"):
        path = venv / name
        parts.append(str(path.stat().st_mtime_ns) if path.exists() else "-")
    return ":".join(parts)


def locate_runtime(venv: Path, packages: tuple[Path, ...],
                   cache: Path = Path("/var/cache/sandgate")) -> SandboxRuntimeFiles:
    """Paths to bind into sandboxes, staging them under ``cache`` when unreachable."""
    if all(first_unsearchable_dir(p) is None for p in (venv, *packages)):
        return SandboxRuntimeFiles(venv, packages)
    key = hashlib.sha256(str(venv).encode()).hexdigest()[:12]
    root = cache / f"runtime-{key}"
    cache.mkdir(parents=True, exist_ok=True)
    cache.chmod(0o755)
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    staged_venv = root / "venv"
    stamp_file = root / "venv.stamp"
    stamp = _stamp(venv)
    if not stamp_file.exists() or stamp_file.read_text() != stamp:
        logger.info("staging the sandbox Python runtime from %s into %s "
                    "(the checkout is not reachable by sandbox uids)", venv, staged_venv)
        shutil.rmtree(staged_venv, ignore_errors=True)
        shutil.copytree(venv, staged_venv, symlinks=True, copy_function=_link_or_copy)
        _open_dirs(staged_venv)
        stamp_file.write_text(stamp)
    staged_packages = []
    for package in packages:
        target = root / "src" / package.name
        fresh = target.with_name(f".{package.name}.new")
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.copytree(package, fresh, copy_function=_link_or_copy,
                        ignore=shutil.ignore_patterns("__pycache__"))
        _open_dirs(fresh)
        shutil.rmtree(target, ignore_errors=True)
        fresh.rename(target)
        staged_packages.append(target)
    _open_dirs(root / "src")
    return SandboxRuntimeFiles(staged_venv, tuple(staged_packages))
