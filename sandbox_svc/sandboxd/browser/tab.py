"""One browser tab: its page plus what the tools need to know about it.

A tab records what happened on its page between calls: dialogs and file
choosers waiting for the model (modal states), network requests with stable
1-based numbers, console error and warning counts since the last navigation,
and whether its renderer crashed. Dialogs block the page's JavaScript, so an
action that opens one would wait forever: ``race_modal`` returns as soon as a
new modal state appears and lets the action finish in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Awaitable
from typing import Any, TypeVar

from playwright.async_api import ConsoleMessage, Dialog, Error, FileChooser, Page, Request

__all__ = ["NumberedRequest", "Tab"]

T = TypeVar("T")

NumberedRequest = tuple[int, Request]


class Tab:
    """A page and its recorded state."""

    def __init__(self, page: Page, *, max_requests: int) -> None:
        self.page = page
        self.crashed = False
        self.dialogs: list[Dialog] = []
        self.file_chooser: FileChooser | None = None
        self.errors = 0
        self.warnings = 0
        self.requests: deque[NumberedRequest] = deque(maxlen=max_requests)
        self.navigation_number = 0
        """Number of the last request before the current document's navigation."""
        self._numbers = itertools.count(1)
        self._modal_waiters: set[asyncio.Future[Any]] = set()
        page.on("dialog", self._on_dialog)
        page.on("dialogclosed", self._on_dialog_closed)
        page.on("filechooser", self._on_file_chooser)
        page.on("crash", self._on_crash)
        page.on("request", self._on_request)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)

    @property
    def has_modal(self) -> bool:
        return bool(self.dialogs) or self.file_chooser is not None

    @property
    def javascript_blocked(self) -> bool:
        """A dialog is open: the page runs no script until it is handled."""
        return bool(self.dialogs)

    def modal_lines(self) -> list[str]:
        lines = [
            f'- ["{d.type}" dialog with message "{d.message}"]: handle it with '
            "browser_handle_dialog"
            for d in self.dialogs
        ]
        if self.file_chooser is not None:
            lines.append(
                "- [File chooser]: choose files with browser_file_upload (paths under /workspace)"
            )
        return lines

    def take_dialog(self) -> Dialog | None:
        return self.dialogs.pop(0) if self.dialogs else None

    def take_file_chooser(self) -> FileChooser | None:
        chooser, self.file_chooser = self.file_chooser, None
        return chooser

    def restore_file_chooser(self, chooser: FileChooser) -> None:
        self.file_chooser = chooser

    async def race_modal(self, action: Awaitable[T]) -> tuple[bool, T | None]:
        """Run ``action`` until it ends or a new dialog or file chooser appears.

        Returns ``(True, result)`` when the action ended, ``(False, None)`` when
        a modal state interrupted it; the action then goes on in the
        background and its outcome is ignored.
        """
        task: asyncio.Future[Any] = asyncio.ensure_future(action)
        appeared: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._modal_waiters.add(appeared)
        try:
            await asyncio.wait({task, appeared}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:
            task.cancel()
            raise
        finally:
            self._modal_waiters.discard(appeared)
            appeared.cancel()
        if task.done():
            result: T = task.result()
            return True, result
        task.add_done_callback(_ignore_outcome)
        return False, None

    def _modal_appeared(self) -> None:
        for waiter in self._modal_waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog)
        self._modal_appeared()

    def _on_dialog_closed(self, dialog: Dialog) -> None:  # handled, or gone with its page
        if dialog in self.dialogs:
            self.dialogs.remove(dialog)

    def _on_file_chooser(self, chooser: FileChooser) -> None:
        self.file_chooser = chooser
        self._modal_appeared()

    def _on_crash(self, _page: Page) -> None:
        self.crashed = True

    def _on_request(self, request: Request) -> None:
        number = next(self._numbers)
        if request.redirected_from is None and _is_main_document(request):
            self.navigation_number = number - 1
            self.errors = self.warnings = 0
            self.file_chooser = None  # it belonged to the document being left
        self.requests.append((number, request))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors += 1
        elif message.type == "warning":
            self.warnings += 1

    def _on_page_error(self, _error: Error) -> None:
        self.errors += 1

    async def close(self) -> None:
        with contextlib.suppress(Error):
            await self.page.close()


def _is_main_document(request: Request) -> bool:
    if not request.is_navigation_request():
        return False
    try:
        return request.frame.parent_frame is None
    except Error:  # a service worker's request has no frame
        return False


def _ignore_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved, so asyncio does not log it as never retrieved
