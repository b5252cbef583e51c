"""Tools that render the page into files or images: screenshots and PDF."""

from __future__ import annotations

import time
from typing import Literal, cast

from ..args import Args
from ..context import ToolContext
from ..errors import BrowserArgumentError, BrowserToolError
from ..snapshot import locate

__all__ = ["pdf_save", "take_screenshot"]

ImageType = Literal["png", "jpeg", "webp"]
_TYPES: tuple[ImageType, ...] = ("png", "jpeg", "webp")
_EXTENSIONS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


async def take_screenshot(ctx: ToolContext, args: Args) -> None:
    """Viewport, full page or one element; inline image unless a filename is given.

    0.0.25's ``raw`` is accepted and ignored: PNG is the default either way.
    """
    target = args.optional_target()
    full_page = args.boolean("fullPage")
    if target and full_page:
        raise BrowserArgumentError(
            "browser_take_screenshot: fullPage cannot be combined with an element (target/ref)"
        )
    filename = args.string("filename")
    kind = cast(ImageType | None, args.choice("type", _TYPES)) or _type_of(filename) or "png"
    scale = cast(Literal["css", "device"], args.choice("scale", ("css", "device")) or "css")
    quality = 90 if kind == "jpeg" else None
    tab = await ctx.tab()
    if target:
        locator = await locate(tab.page, target)
        data = await locator.screenshot(
            type=kind, scale=scale, quality=quality, timeout=ctx.action_timeout_ms()
        )
        what = args.string("element") or f"element {target}"
    else:
        data = await tab.page.screenshot(
            type=kind, scale=scale, quality=quality, full_page=full_page, timeout=ctx.timeout_ms()
        )
        what = "the full page" if full_page else "the viewport"
    if filename:
        _, shown = await ctx.write_file(filename, data)
        ctx.add_result(f"Took a screenshot of {what} and saved it as {shown}")
        return
    if len(data) > ctx.settings.max_image_bytes:
        raise BrowserToolError(
            f"The screenshot is {len(data)} bytes, more than the {ctx.settings.max_image_bytes} "
            "returned inline; pass filename to save it into /workspace, or take the viewport "
            'or an element instead, or use "type": "jpeg".'
        )
    ctx.add_result(f"Took a screenshot of {what}")
    ctx.add_image(data, f"image/{kind}")


def _type_of(filename: str | None) -> ImageType | None:
    if not filename:
        return None
    lowered = filename.lower()
    for extension, kind in _EXTENSIONS.items():
        if lowered.endswith(extension):
            return cast(ImageType, kind)
    return None


async def pdf_save(ctx: ToolContext, args: Args) -> None:
    filename = args.string("filename") or f"page-{time.strftime('%Y%m%dT%H%M%S')}.pdf"
    tab = await ctx.tab()
    data = await tab.page.pdf()
    _, shown = await ctx.write_file(filename, data)
    ctx.add_result(f"Saved the page as PDF to {shown}")
