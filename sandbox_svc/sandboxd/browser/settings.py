"""How sandboxd runs its browser: one frozen value, passed in by ``__main__``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CHROMIUM_ARGS", "DISABLED_FEATURES", "PLAYWRIGHT_DISABLED_FEATURES", "BrowserSettings"]

PLAYWRIGHT_DISABLED_FEATURES: tuple[str, ...] = (
    "AvoidUnnecessaryBeforeUnloadCheckSync",
    "DestroyProfileOnBrowserClose",
    "HttpsUpgrades",
    "HttpsFirstBalancedModeAutoEnable",
    "LensOverlay",
    "MediaRouter",
    "PaintHolding",
    "ThirdPartyStoragePartitioning",
    "AvoidCorsURLLoaderRestartOnRedirect",
    "TcpPortRandomizationWin",
    "OptimizationHints",
    "NetworkTimeServiceQuerying",
    "AimEnabled",
    "PreconnectToSearch",
)
"""The features Playwright 1.65 disables (its chromiumSwitches). Chromium keeps only
the last ``--disable-features`` it is given, so ours must repeat them."""

DISABLED_FEATURES: tuple[str, ...] = (
    *PLAYWRIGHT_DISABLED_FEATURES,
    # A new frame host for every navigation: measured 11-12 ms of a ~78 ms
    # navigate-and-snapshot on these machines; agents gain nothing from it.
    "RenderDocument",
)

CHROMIUM_ARGS: tuple[str, ...] = (
    "--no-sandbox",  # bubblewrap is the sandbox; Chromium's own needs privileges it lacks
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-features=" + ",".join(DISABLED_FEATURES),
)
"""Flags every launch gets, after Playwright's own and its fresh ``--user-data-dir``."""


@dataclass(frozen=True)
class BrowserSettings:
    """The browser's executable, window and time budgets."""

    executable: Path = Path("/usr/bin/chromium")
    """Debian's Chromium (its launcher script passes Playwright's pipe through)."""
    headless: bool = True
    viewport_width: int = 1280
    viewport_height: int = 720
    profile_parent: Path | None = None
    """Where each launch's fresh profile directory is made (default: the system temp dir)."""
    launch_timeout_s: float = 30.0
    """Starting Playwright and Chromium; not counted in a call's own timeout."""
    default_timeout_s: float = 30.0
    """Budget of a whole call when the request sets none."""
    min_timeout_s: float = 0.1
    max_timeout_s: float = 300.0
    action_timeout_s: float = 5.0
    """How long an action waits for its element to become actionable."""
    load_wait_s: float = 5.0
    """After DOMContentLoaded, how long navigation waits for the load event (then moves on)."""
    settle_s: float = 0.1
    """Pause after an input action so that what it triggered (navigation, fetches) can start."""
    network_wait_s: float = 5.0
    """After an action, how long to wait for the requests it started."""
    max_wait_for_s: float = 30.0
    """Longest ``browser_wait_for`` time."""
    max_text_chars: int = 200_000
    """Longest text in a result (snapshot, console, evaluation); more is cut with a marker."""
    max_image_bytes: int = 8 * 1024 * 1024
    """Largest screenshot returned inline; larger ones must be saved to a file."""
    max_requests_kept: int = 1_000
    """Network requests remembered per tab (the oldest are dropped first)."""
