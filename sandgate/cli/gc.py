"""``sandgate gc [--dry-run] [--state-dir DIR]``: remove what no running Sandgate owns.

Without ``--state-dir`` it looks at every instance on this host (the index of
running instances, every ``sandgate-*`` cgroup parent, the configured state dir
and the private ones of ``sandgate mcp``); with it, only at those dirs. Live
instances (their state dir's lock is held) are listed and never touched.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from sandbox_svc.local.garbage import GarbageCollector, GcReport
from sandbox_svc.settings import SandboxServiceSettings

__all__ = ["report_lines", "run_gc"]

_PLURALS = {"process": "processes", "sandbox": "sandboxes", "index entry": "index entries"}


def report_lines(report: GcReport) -> list[str]:
    """What a collection found or removed, one line each, then a summary line."""
    verb = "would remove" if report.dry_run else "removed"
    failed = {id(leftover) for leftover, _ in report.failures}
    lines = [f"kept {live.state_dir}: in use by a running Sandgate (pid "
             f"{live.pid if live.pid is not None else 'unknown'})" for live in report.live]
    lines += [f"kept {state_dir} (not removed: it also holds {', '.join(names)})"
              for state_dir, names in report.kept_dirs]
    lines += [f"{verb} {item.kind} {item.target}  [{item.owner}]"
              for item in report.leftovers if id(item) not in failed]
    lines += [f"FAILED to remove {item.kind} {item.target}  [{item.owner}]: {why}"
              for item, why in report.failures]
    counts = Counter(item.kind for item in report.leftovers if id(item) not in failed)
    summary = ", ".join(f"{n} {kind if n == 1 else _PLURALS.get(kind, kind + 's')}"
                        for kind, n in counts.items())
    lines.append(f"gc: {verb} {summary or 'nothing'}" + (
        f"; {len(report.failures)} failed" if report.failures else "")
        + (" (dry run)" if report.dry_run else ""))
    return lines


def run_gc(state_dirs: list[Path] | None, *, dry_run: bool,
           collector: GarbageCollector | None = None) -> int:
    """Collect, print the report; 0 when everything found could be removed, else 1.

    Raises:
        OSError: a state dir's lock file cannot be opened.
    """
    if state_dirs:
        dirs, scan_host = state_dirs, False
    else:
        configured = SandboxServiceSettings().state_dir
        try:
            private = sorted(configured.glob("stdio-*"))
        except OSError:
            private = []
        dirs, scan_host = [configured, *private], True
    report = (collector or GarbageCollector()).collect(dirs, scan_host=scan_host,
                                                       dry_run=dry_run)
    for line in report_lines(report):
        print(line, file=sys.stdout if not line.startswith("FAILED") else sys.stderr)
    return 1 if report.failures else 0
