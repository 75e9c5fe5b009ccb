"""WADO-RS (PS3.18 §10.4): instances as stored, their metadata, frames and bulk data.

Instances, frames and bulk data are streamed from storage (dicomweb/body.py): multipart/related
bodies with a Content-Length, a byte range on request for a single instance and for bulk data,
paced by the plan's bandwidth. Metadata is the DICOM JSON stored at indexing, joined with the
request's base URL; its ETag changes whenever an instance of the resource does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from typing import Any, BinaryIO, cast

from channels.db import database_sync_to_async

from core.errors import ApiError, bad_request, not_found
from core.headers import NO_STORE
from dicom.media_types import DICOM, OCTET_STREAM, pixel_media_type
from dicom.pixel_data import Extent, PixelData, PixelDataError, frame_extents
from dicomweb.accept import accepts_dicom, accepts_json, accepts_pixels, not_acceptable
from dicomweb.body import Answer, Part, Segment, Slice, boundary_for, byte_range, cut, multipart, send_segments
from dicomweb.links import bulk_data_uris_absolute
from dicomweb.request import Request
from dicomweb.selectors import instances_get
from studies.index.dicomweb_attributes import instance_metadata_backfill
from studies.objects.store import storage

PIXEL_DATA_PATH = "7FE00010"
_FRAME_FIELDS = ("pixel_data", "number_of_frames")


def _no_extra_parameters(request: Request) -> None:
    if request.query():
        raise bad_request(f"Unknown query parameter {request.query()[0][0]!r}.", slug="bad-query-parameter")


async def retrieve_instances(request: Request) -> None:
    """Study, series or instance as Part-10 instances, as stored (PS3.18 §10.4.1.1.1)."""
    _no_extra_parameters(request)
    target = request.target()
    choice = accepts_dicom(request.header(b"accept"), single_allowed=target.sop_uid is not None)
    rows = await database_sync_to_async(instances_get)(organization=request.organization, target=target)
    if choice.transfer_syntax is not None and any(r["transfer_syntax_uid"] != choice.transfer_syntax for r in rows):
        raise not_acceptable(
            f"Stored in {sorted({r['transfer_syntax_uid'] for r in rows})}; PrizMed does not transcode "
            "(ask for transfer-syntax=*)."
        )
    single = target.sop_uid is not None
    headers: list[tuple[bytes, bytes]] = [NO_STORE]
    if single:
        # The stored object's SHA-256 (recorded at ingest: preamble zeroed, as served), RFC 9530.
        digest = base64.b64encode(bytes.fromhex(rows[0]["sha256"])).decode()
        headers += [(b"repr-digest", f"sha-256=:{digest}:".encode()), (b"accept-ranges", b"bytes"),
                    (b"etag", f'"{rows[0]["sha256"]}"'.encode())]  # fmt: skip
    if choice.multipart:
        boundary = boundary_for(*(r["sha256"] for r in rows))
        parts = [Part(_part_headers(r), [Slice(r["object_key"], 0, r["size"])]) for r in rows]
        segments = multipart(parts, boundary)
        content_type = f'multipart/related; type="{DICOM}"; boundary={boundary}'
    else:
        segments = [Slice(rows[0]["object_key"], 0, rows[0]["size"])]
        content_type = f"{DICOM}; transfer-syntax={rows[0]['transfer_syntax_uid']}"
    await _send_ranged(request, segments, content_type, headers, ranged=single)


def _part_headers(row: dict[str, Any]) -> list[tuple[str, str]]:
    """A part's headers (RFC 2387): its type and syntax, length, SOP Instance UID, digest."""
    digest = base64.b64encode(bytes.fromhex(row["sha256"])).decode()
    return [
        ("Content-Type", f"{DICOM}; transfer-syntax={row['transfer_syntax_uid']}"),
        ("Content-Length", str(row["size"])),
        ("Content-Location", row["sop_uid"]),
        ("Content-Digest", f"sha-256=:{digest}:"),
    ]


async def _send_ranged(
    request: Request, segments: list[Segment], content_type: str, headers: list[tuple[bytes, bytes]], *, ranged: bool
) -> None:
    total = sum(len(s) if isinstance(s, bytes) else s.length for s in segments)
    status, span = 200, byte_range(request.header(b"range"), total) if ranged else None
    if span is not None:
        status, segments = 206, cut(segments, *span)
        headers = [*headers, (b"content-range", f"bytes {span[0]}-{span[1] - 1}/{total}".encode())]
    headers = [(b"content-type", content_type.encode("latin-1")), *headers]
    await send_segments(request.send, request.receive, Answer(status, headers, segments), pace=request.pace)


async def retrieve_metadata(request: Request) -> None:
    """Study, series or instance metadata (PS3.18 §10.4.1.1.2): the stored DICOM JSON, no file
    opened; ETag / If-None-Match (304) over what it holds."""
    _no_extra_parameters(request)
    accepts_json(request.header(b"accept"))
    rows = await database_sync_to_async(instances_get)(
        organization=request.organization, target=request.target(), fields=("metadata",)
    )
    missing = [row["id"] for row in rows if not row["metadata"]]
    if missing:  # indexed before metadata was kept: built once now, from the files
        built = await database_sync_to_async(instance_metadata_backfill)(instance_ids=missing)
        for row in rows:
            row["metadata"] = built.get(row["id"], row["metadata"])
    base = request.base()
    etag = '"' + hashlib.sha256("\n".join([base, *(r["sha256"] for r in rows)]).encode()).hexdigest()[:40] + '"'
    headers = [(b"etag", etag.encode())]
    if request.header(b"if-none-match") in (etag, "*"):
        await request.send({"type": "http.response.start", "status": 304, "headers": [NO_STORE, *headers]})
        await request.send({"type": "http.response.body", "body": b""})
        return
    body = "[" + ",".join(r["metadata"] for r in rows if r["metadata"]) + "]"
    await request.send_dicom_json(200, bulk_data_uris_absolute(body, base).encode(), headers)


def frame_numbers(text: str, count: int) -> list[int]:
    """``1,3,5`` (PS3.18 §10.4.1.1.3: a list of 1-based frame numbers); 400 outside 1..count."""
    numbers = []
    for part in text.split(","):
        if not part.isascii() or not part.isdigit() or not 1 <= int(part) <= count:
            raise bad_request(
                f"Frame numbers must be 1 to {count}, comma-separated; {part!r} is not.", slug="bad-frame"
            )
        numbers.append(int(part))
    return numbers


def _layout(row: dict[str, Any]) -> PixelData:
    layout = row["pixel_data"]
    return PixelData(
        tag=layout["tag"],
        value=Extent(*layout["value"]),
        encapsulated=layout["encapsulated"],
        basic_offsets=tuple(layout["offsets"]),
        fragments=tuple(Extent(*f) for f in layout["fragments"]),
        vr=layout["vr"],
    )


def _frames(row: dict[str, Any], numbers: list[int], fp: BinaryIO) -> list[list[Slice]]:
    """The stored extents of the frames ``numbers``, ``fp`` the stored object (read only for a
    JPEG stream without an offset table, which is split at its end-of-image markers)."""
    layout = row["pixel_data"]
    try:
        extents = frame_extents(
            fp,
            _layout(row),
            number_of_frames=row["number_of_frames"],
            frame_length=layout["frame_length"],
            extended_offsets=tuple(layout["extended"]) if layout["extended"] else None,  # type: ignore[arg-type]
        )
    except PixelDataError as exc:
        raise ApiError(422, f"The instance's frames cannot be found: {exc}.", slug="bad-pixel-data") from None
    if max(numbers) > len(extents):
        raise ApiError(422, f"The pixel data holds {len(extents)} frames, not {max(numbers)}.", slug="bad-pixel-data")
    return [[Slice(row["object_key"], e.offset, e.length) for e in extents[n - 1]] for n in numbers]


class _FileNeeded(Exception):
    """Raised by ``_Unread`` when the frames' places need the stored bytes after all."""


class _Unread:
    """The stored object, for the common case where the index says where every frame lies:
    any read of it stops the computation, which then runs again on a worker thread with the
    real file. Native data and offset tables thus cost no file opening and no thread hop."""

    def read(self, size: int = -1) -> bytes:
        raise _FileNeeded

    def seek(self, offset: int, whence: int = 0) -> int:
        raise _FileNeeded


def _frames_read(row: dict[str, Any], numbers: list[int]) -> list[list[Slice]]:
    """``_frames`` with the stored object opened: blocking, for a worker thread."""
    with storage().open(row["object_key"]) as fp:
        return _frames(row, numbers, fp)


async def _frame_slices(row: dict[str, Any], numbers: list[int]) -> list[list[Slice]]:
    try:
        return _frames(row, numbers, cast(BinaryIO, _Unread()))
    except _FileNeeded:
        return await asyncio.to_thread(_frames_read, row, numbers)


async def _pixel_row(request: Request) -> dict[str, Any]:
    target = request.target()
    (row,) = await database_sync_to_async(instances_get)(
        organization=request.organization, target=target, fields=_FRAME_FIELDS
    )
    if row["pixel_data"] is None:
        raise not_found("The instance has no pixel data.")
    found: dict[str, Any] = row
    return found


async def retrieve_frames(request: Request) -> None:
    """Frames of an instance (PS3.18 §10.4.1.1.3), each a part in its stored media type."""
    _no_extra_parameters(request)
    row = await _pixel_row(request)
    numbers = frame_numbers(request.params["frames"], row["number_of_frames"])
    await _send_pixels(request, row, numbers)


async def _send_pixels(request: Request, row: dict[str, Any], numbers: list[int]) -> None:
    encapsulated = row["pixel_data"]["encapsulated"]
    media = pixel_media_type(row["transfer_syntax_uid"], encapsulated=encapsulated)
    accepts_pixels(request.header(b"accept"), stored_media=media, stored_syntax=row["transfer_syntax_uid"])
    frames = await _frame_slices(row, numbers)
    part_type = f"{media}; transfer-syntax={row['transfer_syntax_uid']}" if encapsulated else media
    parts = [Part([("Content-Type", part_type), ("Content-Length", str(sum(s.length for s in f)))], f) for f in frames]
    boundary = boundary_for(row["sha256"], *map(str, numbers))
    content_type = f'multipart/related; type="{media}"; boundary={boundary}'
    await _send_ranged(request, multipart(parts, boundary), content_type, [NO_STORE], ranged=False)


async def retrieve_bulk_data(request: Request) -> None:
    """A bulk data value the metadata names by BulkDataURI (PS3.18 §10.4.1.1.5): pixel data as
    its frames, any other value as one application/octet-stream part; Range applies."""
    _no_extra_parameters(request)
    path = request.params["path"]
    if path.upper() == PIXEL_DATA_PATH:
        row = await _pixel_row(request)
        await _send_pixels(request, row, list(range(1, row["number_of_frames"] + 1)))
        return
    (row,) = await database_sync_to_async(instances_get)(
        organization=request.organization, target=request.target(), fields=("bulk_data",)
    )
    extent = row["bulk_data"].get(path.upper())
    if extent is None:
        raise not_found("The instance has no bulk data at this path.")
    accepts_pixels(request.header(b"accept"), stored_media=OCTET_STREAM, stored_syntax=row["transfer_syntax_uid"])
    piece = Slice(row["object_key"], extent[0], extent[1])
    boundary = boundary_for(row["sha256"], path)
    segments = multipart(
        [Part([("Content-Type", OCTET_STREAM), ("Content-Length", str(piece.length))], [piece])], boundary
    )
    content_type = f'multipart/related; type="{OCTET_STREAM}"; boundary={boundary}'
    await _send_ranged(request, segments, content_type, [NO_STORE, (b"accept-ranges", b"bytes")], ranged=True)
