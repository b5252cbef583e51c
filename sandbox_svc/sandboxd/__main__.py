"""sandboxd command line: the one place that reads sandboxd's environment.

    python -m sandbox_svc.sandboxd --listen unix:/run/sandgate/sandboxd.sock \\
        --workspace /workspace [--token-file PATH] [--kernel-runtime-dir DIR] \\
        [--oom-file PATH] [--browser-warm] [--kernel-warm] \\
        [--browser-executable PATH] [--address-file PATH]

Locally the control plane gives it a Unix socket in the sandbox's run
directory; in a Kubernetes Pod it listens on TCP (``--listen 0.0.0.0:8080``)
with the token mounted from the sandbox's Secret. ``--address-file`` names a
file that receives the bound address (with the real port when ``:0`` asked
the kernel for one) once the daemon serves.

The token comes from ``--token-file`` (read, then unlinked) or from
``SANDGATE_SANDBOXD_TOKEN`` (removed from the environment so that commands and
the kernel never inherit it). Without a token the daemon refuses to start
(exit 2). SIGTERM or SIGINT: health NOT_SERVING, graceful stop, kernel shut
down, browser closed. Start-up is on the sandbox's cold path: the heavy imports
(grpc) happen after the arguments are checked; the workspace files, kernel and
browser modules on their first call (see ``lazy.py``), jupyter_client only on
the first cell, and Playwright only on the first browser call, unless
``--browser-warm`` starts the browser before the daemon serves (pooled browser sandboxes then
have it up before an agent's first call). ``--kernel-warm`` likewise starts
the kernel before the daemon serves (bounded; past the bound it serves and the
kernel keeps starting): a pooled sandbox is ready only once its first cell can
run at once, and its kernel's start-up never competes with a claimed sandbox's
first calls. The control plane asks for it only for pooled sandboxes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .browser import BrowserSession
    from .kernel import KernelSession
    from .lazy import Lazy
    from .limits import Limits

from sandgate.service.logs import LOG_FORMAT_ENV, configure_logging

from .venv import enter_venv

__all__ = ["main"]

TOKEN_ENV = "SANDGATE_SANDBOXD_TOKEN"
OOM_FILE_ENV = "SANDGATE_OOM_FILE"
_EXIT_USAGE = 2
_STOP_GRACE_S = 5.0
_BROWSER_WARM_WAIT_S = 10.0
"""--browser-warm delays serving by at most this: the control plane waits 20 s for it."""
_KERNEL_WARM_WAIT_S = 10.0
"""--kernel-warm delays serving by at most this (the same budget as the browser's)."""

logger = logging.getLogger("sandboxd")


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox_svc.sandboxd",
        description="Sandgate data-plane daemon: serves sandgate.sandbox.v1.SandboxRuntime.",
    )
    parser.add_argument(
        "--listen", required=True, help="unix:/path/to.sock, or HOST:PORT (port 0 picks one)"
    )
    parser.add_argument("--workspace", type=Path, default=Path("/workspace"))
    parser.add_argument(
        "--token-file",
        type=Path,
        help=f"file holding the token (unlinked once read); else ${TOKEN_ENV}",
    )
    parser.add_argument(
        "--kernel-runtime-dir",
        type=Path,
        help="where the kernel's private runtime directory is made (default: system temp dir)",
    )
    parser.add_argument(
        "--oom-file",
        type=Path,
        default=os.environ.get(OOM_FILE_ENV) or None,
        help=f"cgroup file with an 'oom_kill N' line (default: ${OOM_FILE_ENV})",
    )
    parser.add_argument(
        "--browser-warm",
        action="store_true",
        help="start the browser before serving, not on the first browser call",
    )
    parser.add_argument(
        "--kernel-warm",
        action="store_true",
        help="start the Python kernel before serving, not on the first cell",
    )
    parser.add_argument(
        "--browser-executable",
        type=Path,
        default=Path("/usr/bin/chromium"),
        help="the Chromium that browser calls drive (default: /usr/bin/chromium)",
    )
    parser.add_argument(
        "--address-file",
        type=Path,
        help="write the bound address here once serving (useful with port 0)",
    )
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _listen_problem(listen: str) -> str | None:
    """Why ``listen`` is not an address sandboxd can serve on, or None."""
    if listen.startswith("unix:"):
        return None if len(listen) > len("unix:") else "a unix: address needs a path"
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        return "use unix:/path/to.sock or HOST:PORT with a port in [0, 65535]"
    return None


def _take_token(token_file: Path | None) -> str:
    """Read the token and leave no copy behind: unlink the file, drop the env var."""
    from_env = os.environ.pop(TOKEN_ENV, "")
    if token_file is None:
        return from_env.strip()
    try:
        token = token_file.read_text().strip()
    except OSError as exc:
        raise SystemExit(
            f"sandboxd: cannot read --token-file {token_file}: {exc.strerror}"
        ) from None
    try:
        token_file.unlink()
    except OSError:
        pass  # read-only mount: the launcher removes it
    return token


async def _serve(args: argparse.Namespace, token: str) -> int:
    from sandgate.service.assembly import ListenError, serve_until_signal

    from .lazy import Lazy
    from .limits import Limits
    from .server import build_server

    limits = Limits()
    # Made on first use (their modules too), unless warmed below.
    kernel = Lazy(partial(_make_kernel, args, limits))
    browser = Lazy(partial(_make_browser, args))
    warming = (asyncio.create_task(_warm_kernel(kernel.get()), name="sandboxd-kernel-warm")
               if args.kernel_warm else None)
    if args.browser_warm:
        from .browser import BrowserUnavailableError

        try:
            async with asyncio.timeout(_BROWSER_WARM_WAIT_S):
                await browser.get().start()
        except (BrowserUnavailableError, TimeoutError) as exc:  # serve; the first call retries
            reason = str(exc) or f"it took over {_BROWSER_WARM_WAIT_S:g} s"
            logger.warning("browser not started before serving: %s", reason)
    if warming is not None:
        try:
            await asyncio.wait_for(asyncio.shield(warming), _KERNEL_WARM_WAIT_S)
        except TimeoutError:  # serve; the kernel keeps starting and the first cell waits
            logger.warning("kernel not up after %g s; serving while it starts",
                           _KERNEL_WARM_WAIT_S)
    try:
        server = await build_server(
            workspace=args.workspace,
            token=token,
            listen=args.listen,
            kernel=kernel,
            limits=limits,
            oom_file=args.oom_file,
            browser=browser,
        )
    except ListenError as exc:
        print(f"sandboxd: {exc}", file=sys.stderr)
        if warming is not None:
            await _cancel(warming)
        await _shutdown(kernel)
        await _shutdown(browser)
        return 1
    # Run after the server has stopped, in reverse order: the kernel, then the browser.
    server.close_with(partial(_shutdown, browser))
    server.close_with(partial(_shutdown, kernel))
    if warming is not None:
        server.close_with(partial(_cancel, warming))  # runs first: a start in flight stops
    gc.freeze()  # start-up objects live forever: keep them out of future collections
    gc.enable()
    logger.info(
        "serving on %s (workspace %s, pid %d)", server.address, args.workspace, os.getpid()
    )
    if args.address_file is not None:
        _announce(args.address_file, server.address)
    await serve_until_signal(partial(server.stop, _STOP_GRACE_S))
    logger.info("stopped")
    return 0


def _make_kernel(args: argparse.Namespace, limits: Limits) -> KernelSession:
    from .kernel import KernelSession

    return KernelSession(
        workspace=args.workspace, limits=limits, runtime_base=args.kernel_runtime_dir
    )


def _make_browser(args: argparse.Namespace) -> BrowserSession:
    from .browser import BrowserSession, BrowserSettings
    from .paths import Workspace

    return BrowserSession(
        BrowserSettings(executable=args.browser_executable), Workspace(args.workspace)
    )


async def _shutdown(session: Lazy[KernelSession] | Lazy[BrowserSession]) -> None:
    """Shut the kernel or browser down if it was ever made."""
    made = session.peek()
    if made is not None:
        await made.shutdown()


async def _warm_kernel(kernel: KernelSession) -> None:
    """Start the kernel ahead of the first cell; on failure that cell starts it again."""
    from .errors import KernelUnavailableError

    try:
        await kernel.prime()
    except KernelUnavailableError as exc:
        logger.warning("kernel not warmed: %s", exc)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _announce(path: Path, address: str) -> None:
    """Write the address atomically: a reader never sees half of it."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(address + "\n")
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    enter_venv()  # before anything of the venv is imported
    args = _parse(argv)
    problem = _listen_problem(args.listen)
    if problem is not None:
        print(f"sandboxd: bad --listen {args.listen!r}: {problem}", file=sys.stderr)
        return _EXIT_USAGE
    token = _take_token(args.token_file)
    if not token:
        print(
            f"sandboxd: no token; pass --token-file PATH or set {TOKEN_ENV}. "
            "Refusing to serve without one.",
            file=sys.stderr,
        )
        return _EXIT_USAGE
    if not args.workspace.is_dir():
        print(f"sandboxd: workspace {args.workspace} is not a directory", file=sys.stderr)
        return _EXIT_USAGE
    # Start-up only allocates objects that live as long as the daemon; collecting
    # garbage meanwhile costs cold-start time for nothing. Re-enabled once serving.
    gc.disable()
    try:
        configure_logging(os.environ.get(LOG_FORMAT_ENV, "text"), args.log_level)
    except ValueError as exc:
        print(f"sandboxd: {exc}", file=sys.stderr)
        return _EXIT_USAGE
    _watch_children_with_pidfds()
    return asyncio.run(_serve(args, token))


def _watch_children_with_pidfds() -> None:
    """Python 3.11 waits for each command in a new thread (ThreadedChildWatcher);
    a pidfd on the event loop does it without one (3.12 picks it by itself).
    Kept as it is where pidfd_open is missing (Linux before 5.3, or a filter)."""
    if sys.version_info >= (3, 12) or not hasattr(os, "pidfd_open"):
        return
    try:
        os.close(os.pidfd_open(os.getpid()))
    except OSError:
        return
    asyncio.set_child_watcher(asyncio.PidfdChildWatcher())


if __name__ == "__main__":
    sys.exit(main())
