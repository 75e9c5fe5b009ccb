"""Answers made of stored bytes: whole objects, slices of them (frames, bulk data) and the
multipart framing between them, streamed at flat memory, paced, and cut to a byte range.

An answer is planned as a list of segments (literal framing bytes, or ``length`` bytes of a
stored object at ``offset``) whose total is known before a byte is sent, so every answer has a
Content-Length and one ``Range: bytes=a-b`` (RFC 9110 §14) maps onto the same plan: a dropped
download resumes from where it stopped. Multipart boundaries are derived from what the answer
holds, so the same request gives the same bytes and a range of it means the same thing.
Objects are read through the storage interface only (``storage().open_range``: on S3 one ranged
GET per slice, read as a stream), in READ_BYTES pieces on a worker thread, the next few slices'
first pieces fetched ahead (an S3 round trip per object would otherwise bound a whole study).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from core.asgi import Headers, Receive, Send
from core.errors import ApiError
from studies.objects.store import storage

READ_BYTES = 2 * 1024 * 1024  # one piece read and sent; memory per download stays near this
READ_AHEAD = 4  # objects whose first piece is fetched while earlier ones are sent
_RANGE = re.compile(r"bytes=(\d*)-(\d*)", re.ASCII)


@dataclass(frozen=True, slots=True)
class Slice:
    """``length`` bytes of the stored object ``key`` from ``offset``."""

    key: str
    offset: int
    length: int


Segment = bytes | Slice


def segment_length(segment: Segment) -> int:
    return len(segment) if isinstance(segment, bytes) else segment.length


@dataclass(frozen=True, slots=True)
class Part:
    """One body part of a multipart/related answer (RFC 2387): its headers and content."""

    headers: Sequence[tuple[str, str]]
    content: Sequence[Segment]


def boundary_for(*identity: str) -> str:
    """A boundary that depends only on what the answer holds (so ranges of it are stable)."""
    return "prizmed-" + hashlib.sha256("\n".join(identity).encode()).hexdigest()[:32]


def multipart(parts: Iterable[Part], boundary: str) -> list[Segment]:
    """The segments of a multipart body (RFC 2046 §5.1.1): each part after its delimiter and
    headers, then the close delimiter."""
    segments: list[Segment] = []
    for part in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in part.headers)
        segments.append(f"--{boundary}\r\n{head}\r\n".encode("latin-1"))
        segments.extend(part.content)
        segments.append(b"\r\n")
    segments.append(f"--{boundary}--\r\n".encode("latin-1"))
    return segments


def byte_range(header: str | None, total: int) -> tuple[int, int] | None:
    """The [start, stop) of a single ``Range: bytes=...`` request; None for no range (or one
    this server ignores: several ranges, another unit, as RFC 9110 §14.2 allows). Raises
    ApiError 416 when the range lies outside the representation."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        start, stop = max(0, total - int(last)), total
    else:
        start, stop = int(first), total if not last else min(total, int(last) + 1)
    if start >= total or start >= stop:
        raise ApiError(416, f"The range lies outside the {total} bytes.", slug="range-not-satisfiable",
                       headers=[("Content-Range", f"bytes */{total}")])  # fmt: skip
    return start, stop


def cut(segments: Sequence[Segment], start: int, stop: int) -> list[Segment]:
    """The segments covering bytes [start, stop) of the whole."""
    out: list[Segment] = []
    position = 0
    for segment in segments:
        length = segment_length(segment)
        lo, hi = max(start, position), min(stop, position + length)
        if lo < hi:
            if isinstance(segment, bytes):
                out.append(segment[lo - position : hi - position])
            else:
                out.append(Slice(segment.key, segment.offset + lo - position, hi - lo))
        position += length
    return out


@dataclass(frozen=True, slots=True)
class Answer:
    """An answer of stored bytes: status, headers (Content-Length is added) and the segments."""

    status: int
    headers: Headers
    segments: Sequence[Segment]


async def send_segments(
    send: Send, receive: Receive, answer: Answer, *, pace: Callable[[int], Awaitable[None]]
) -> None:
    """Send the answer: headers first (with Content-Length), then the bytes as they are read,
    each piece paced. Stops early, quietly, when the client goes away."""
    segments = answer.segments
    total = sum(segment_length(s) for s in segments)
    headers = [*answer.headers, (b"content-length", str(total).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    gone = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
    ahead = _ReadAhead([s for s in segments if isinstance(s, Slice)])
    try:
        pending = b""
        for segment in segments:
            if gone.is_set():
                return
            if isinstance(segment, bytes):
                pending += segment  # framing: sent with the next piece of content
                continue
            async for piece in ahead.pieces(segment):
                await pace(len(piece))
                await send({"type": "http.response.body", "body": pending + piece if pending else piece,
                            "more_body": True})  # fmt: skip
                pending = b""
                if gone.is_set():
                    return
        await send({"type": "http.response.body", "body": pending, "more_body": False})
    finally:
        watcher.cancel()
        ahead.close()


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


class _ReadAhead:
    """The slices of one answer, read in order, the next READ_AHEAD reads under way meanwhile:
    an answer of many objects (a study of small instances) waits for the store's latency once
    per READ_AHEAD reads, not once per object. A read is the first piece of one slice, or
    several whole slices in a row that together fit in one piece (one thread hop for dozens of
    small instances, not one or two each). Memory stays below READ_AHEAD + 1 pieces."""

    def __init__(self, slices: Sequence[Slice]) -> None:
        self._slices = slices
        self._scheduled = 0
        self._tasks: deque[asyncio.Future[list[_Fetched]]] = deque()
        self._fetched: deque[_Fetched] = deque()  # of the read last awaited, not yet sent

    def _fill(self) -> None:
        while len(self._tasks) < READ_AHEAD and self._scheduled < len(self._slices):
            batch = [self._slices[self._scheduled]]
            total = batch[0].length
            while (
                self._scheduled + len(batch) < len(self._slices)
                and total + (following := self._slices[self._scheduled + len(batch)]).length <= READ_BYTES
            ):
                batch.append(following)
                total += following.length
            self._tasks.append(asyncio.ensure_future(asyncio.to_thread(_first_pieces, batch)))
            self._scheduled += len(batch)

    async def pieces(self, piece: Slice):  # type: ignore[no-untyped-def]  # an async generator of bytes
        """The bytes of ``piece``, the next slice of the answer, in READ_BYTES pieces."""
        self._fill()
        if not self._fetched:
            self._fetched.extend(await self._tasks.popleft())
            self._fill()
        fp, data = self._fetched.popleft()
        try:
            left = piece.length
            while left > 0:
                if not data:
                    raise OSError(f"stored object {piece.key} is shorter than its index says")
                left -= len(data)
                yield data
                if left > 0:  # (a slice read whole that came short has nothing more: the error above)
                    data = await asyncio.to_thread(fp.read, min(READ_BYTES, left)) if fp is not None else b""
        finally:
            if fp is not None:
                await asyncio.to_thread(fp.close)

    def close(self) -> None:
        """Drop what was fetched ahead and not sent (the client went away, or a read failed)."""
        for task in self._tasks:
            task.add_done_callback(_close_fetched)  # its thread runs on: close when it is done
        self._tasks.clear()
        for fp, _ in self._fetched:
            if fp is not None:
                fp.close()
        self._fetched.clear()


_Fetched = tuple[BinaryIO | None, bytes]  # a slice's reader (None: read whole) and first piece


def _first_pieces(batch: list[Slice]) -> list[_Fetched]:
    """Each slice's reader and first piece; a slice of one piece (a frame, most instances) is
    read whole and closed here, on the same thread hop: (None, its bytes)."""
    fetched: list[_Fetched] = []
    try:
        for piece in batch:
            fetched.append(_first_piece(piece))
    except BaseException:
        for fp, _ in fetched:
            if fp is not None:
                fp.close()
        raise
    return fetched


def _first_piece(piece: Slice) -> _Fetched:
    fp = storage().open_range(piece.key, piece.offset, piece.length)
    try:
        data = fp.read(min(READ_BYTES, piece.length))
        if piece.length > READ_BYTES:
            return fp, data
        while len(data) < piece.length and (more := fp.read(piece.length - len(data))):
            data += more  # a stream may answer a read with less than was asked
    except BaseException:
        fp.close()
        raise
    fp.close()
    return None, data


def _close_fetched(task: asyncio.Future[list[_Fetched]]) -> None:
    if task.exception() is None:  # a failed fetch closed its readers itself
        for fp, _ in task.result():
            if fp is not None:
                fp.close()


def read_slices(slices: Iterable[Slice]) -> bytes:
    """The bytes of a few small slices, read at once (rendering, offset tables): blocking."""
    out = []
    for piece in slices:
        with storage().open_range(piece.key, piece.offset, piece.length) as fp:
            out.append(fp.read(piece.length))
    return b"".join(out)
