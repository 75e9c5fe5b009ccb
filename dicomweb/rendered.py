"""Rendered resources and thumbnails (PS3.18 §10.4.1.1.4, §10.4.1.1.5; parameters §8.3.5.1):
`…/rendered` and `…/thumbnail` of a study, series, instance or frame, as JPEG or PNG.

A study or series is shown by its first instance that holds an image (as Orthanc does); an
instance by its first frame; a frame list names one frame.
"""

from __future__ import annotations

import asyncio
from typing import Any

from channels.db import database_sync_to_async

from core.errors import bad_request
from core.params import integer
from dicomweb.accept import accepts_image
from dicomweb.rendering import (
    THUMBNAIL_PIXELS,
    WINDOW_FUNCTIONS,
    Rendering,
    Window,
    cannot_render,
    render,
    render_check,
)
from dicomweb.request import Request
from dicomweb.retrieve import frame_numbers
from dicomweb.selectors import instances_get

MAX_VIEWPORT = 8192
# What rendering reads of an instance, besides where it is stored.
IMAGE_FIELDS = ("rows", "columns", "samples_per_pixel", "bits_allocated", "number_of_frames")


async def rendered(request: Request) -> None:
    await _render(request, thumbnail=False)


async def thumbnail(request: Request) -> None:
    await _render(request, thumbnail=True)


async def _render(request: Request, *, thumbnail: bool) -> None:
    # The accept query parameter (PS3.18 §8.3.3.1) stands for the header: viewers put it in <img> URLs.
    accept = dict(request.query()).get("accept") or request.header(b"accept")
    how = rendering_parse(request.query(), media_type=accepts_image(accept), thumbnail=thumbnail)
    rows = await database_sync_to_async(instances_get)(
        organization=request.organization, target=request.target(), fields=IMAGE_FIELDS
    )
    row = next((r for r in rows if r["number_of_frames"] is not None), None)
    if row is None:
        raise cannot_render("Nothing here holds an image to render.")
    render_check(row)  # before the frame list: a hostile header is refused at once
    frame = 1
    if "frames" in request.params:
        numbers = frame_numbers(request.params["frames"], row["number_of_frames"])
        if len(numbers) != 1:
            raise bad_request("A rendered frame request names one frame.", slug="bad-frame")
        frame = numbers[0]
    image = await asyncio.to_thread(render, row, frame=frame, how=how)
    await request.send_body(200, image, how.media_type, [])


def rendering_parse(pairs: list[tuple[str, str]], *, media_type: str, thumbnail: bool) -> Rendering:
    """``window``, ``viewport`` and ``quality`` (PS3.18 §8.3.5.1), ``accept`` (read by the caller);
    400 for anything else."""
    fields: dict[str, Any] = {"media_type": media_type}
    if thumbnail:
        fields["viewport"] = (THUMBNAIL_PIXELS, THUMBNAIL_PIXELS)
    for name, value in pairs:
        if name == "quality":
            fields["quality"] = integer(value, name="quality", low=1, high=100)
        elif name == "viewport":
            fields["viewport"] = _viewport(value)
        elif name == "window":
            fields["window"] = _window(value)
        elif name != "accept":
            raise bad_request(f"Unknown query parameter {name!r}.", slug="bad-query-parameter")
    return Rendering(**fields)


def _viewport(value: str) -> tuple[int, int]:
    parts = value.split(",")
    if len(parts) != 2:
        raise bad_request("viewport must be vw,vh (cropping is not supported).", slug="bad-query-parameter")
    width, height = (integer(p, name="viewport", low=1, high=MAX_VIEWPORT) for p in parts)
    return width, height


def _window(value: str) -> Window:
    parts = value.split(",")
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        function = parts[2].strip().lower().replace("-", "_") if len(parts) == 3 else "linear"
        if function not in WINDOW_FUNCTIONS:
            raise ValueError
        return Window(float(parts[0]), float(parts[1]), function)
    except ValueError:
        raise bad_request(
            "window must be center,width[,linear|linear-exact|sigmoid].", slug="bad-query-parameter"
        ) from None
