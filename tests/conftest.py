"""Suite-wide: hypothesis settings, and the counts the fault and soak suites report,
printed after every run.

A test asks for ``report_line`` and gives it one line (acknowledged / lost /
told writes, leftover counts); the lines appear in pytest's terminal summary
whether or not output is captured (``-s``), so ``make test`` and ``make faults``
show them.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir

# Property tests keep no example database, and their caches live outside the checkout;
# no example is judged by time.
set_hypothesis_home_dir(str(Path(tempfile.gettempdir()) / "sandgate-hypothesis"))
settings.register_profile("sandgate", database=None, deadline=None)
settings.load_profile("sandgate")

REPORT = pytest.StashKey[list[str]]()


@pytest.fixture
def report_line(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Adds one line to the end-of-run summary."""
    lines = request.config.stash.setdefault(REPORT, [])
    return lines.append


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int,
                            config: pytest.Config) -> None:
    lines = config.stash.get(REPORT, [])
    if lines:
        terminalreporter.write_sep("-", "sandgate: faults and leftovers")
        for line in lines:
            terminalreporter.write_line(line)
