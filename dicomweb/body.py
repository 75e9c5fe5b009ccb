"""Answers made of stored bytes: whole objects, slices of them (frames, bulk data) and the
multipart framing between them, streamed at flat memory, paced, and cut to a byte range.

An answer is planned as a list of segments (literal framing bytes, or ``length`` bytes of a
stored object at ``offset``) whose total is known before a byte is sent, so every answer has a
Content-Length and one ``Range: bytes=a-b`` (RFC 9110 §14) maps onto the same plan: a dropped
download resumes from where it stopped. Multipart boundaries are derived from what the answer
holds, so the same request gives the same bytes and a range of it means the same thing.
Objects are read through the storage interface only (``storage().open_range``: on S3 one ranged
GET per slice, read as a stream) on a worker thread, the next few reads fetched ahead (an S3
round trip per object would otherwise bound a whole study). Small slices and the framing around
them are read into one buffer of about READ_BYTES, sent as one ASGI message (a bytearray: the
bytes are read in place, never joined); a larger slice is sent in READ_BYTES pieces.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
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
    each send paced by the stored bytes it carries. Stops early, quietly, when the client goes
    away. Raises OSError when a stored object is shorter than its slice."""
    segments = answer.segments
    total = sum(segment_length(s) for s in segments)
    headers = [*answer.headers, (b"content-length", str(total).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    gone = asyncio.Event()
    watcher = asyncio.ensure_future(_watch_disconnect(receive, gone))
    ahead = _ReadAhead(_runs(segments))
    try:
        async for body, stored in ahead.bodies():
            await pace(stored)
            await send({"type": "http.response.body", "body": body, "more_body": True})
            if gone.is_set():
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        watcher.cancel()
        ahead.close()


async def _watch_disconnect(receive: Receive, gone: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            gone.set()
            return


@dataclass(frozen=True, slots=True)
class _Run:
    """What one read fetches: framing and whole slices in a row, at most READ_BYTES of stored
    bytes, gathered into one buffer and sent at once; or, ``large``, one slice longer than
    READ_BYTES, sent in READ_BYTES pieces."""

    segments: Sequence[Segment]
    stored: int  # the slices' bytes: what pacing counts
    large: bool = False


def _runs(segments: Sequence[Segment]) -> list[_Run]:
    """The answer's segments in reads: a study of small instances in ~READ_BYTES buffers
    (one thread hop, one send and one copy for dozens of instances with their framing)."""
    runs: list[_Run] = []
    batch: list[Segment] = []
    stored = 0
    for segment in segments:
        if isinstance(segment, Slice):
            large = segment.length > READ_BYTES
            if large or (stored and stored + segment.length > READ_BYTES):
                if batch:
                    runs.append(_Run(batch, stored))
                batch, stored = [], 0
            if large:
                runs.append(_Run([segment], segment.length, large=True))
                continue
            stored += segment.length
        batch.append(segment)
    if batch:
        runs.append(_Run(batch, stored))
    return runs


class _ReadAhead:
    """The runs of one answer, read in order, the next READ_AHEAD reads under way meanwhile:
    an answer of many objects (a study of small instances) waits for the store's latency once
    per READ_AHEAD reads, not once per object. Memory stays below READ_AHEAD + 1 runs."""

    def __init__(self, runs: Sequence[_Run]) -> None:
        self._runs = runs
        self._tasks: deque[asyncio.Future[_Fetched]] = deque()
        self._fp: BinaryIO | None = None  # the large slice being sent

    def _fill(self, next_run: int) -> None:
        while len(self._tasks) < READ_AHEAD and next_run + len(self._tasks) < len(self._runs):
            run = self._runs[next_run + len(self._tasks)]
            self._tasks.append(asyncio.ensure_future(asyncio.to_thread(_fetch, run)))

    async def bodies(self) -> AsyncIterator[tuple[bytes | bytearray, int]]:
        """(bytes to send, stored bytes among them), in order: a run's buffer, or a large
        slice's READ_BYTES pieces."""
        for index, run in enumerate(self._runs):
            self._fill(index)
            self._fp, data = await self._tasks.popleft()
            self._fill(index + 1)
            if not run.large:
                yield data, run.stored
                continue
            piece = run.segments[0]
            assert isinstance(piece, Slice) and self._fp is not None
            left = piece.length
            while left > 0:
                if not data:
                    raise OSError(f"stored object {piece.key} is shorter than its index says")
                left -= len(data)
                yield data, len(data)
                if left > 0:
                    data = await asyncio.to_thread(self._fp.read, min(READ_BYTES, left))
            fp, self._fp = self._fp, None
            await asyncio.to_thread(fp.close)

    def close(self) -> None:
        """Drop what was fetched ahead and not sent (the client went away, or a read failed)."""
        for task in self._tasks:
            task.add_done_callback(_close_fetched)  # its thread runs on: close when it is done
        self._tasks.clear()
        if self._fp is not None:
            self._fp.close()
            self._fp = None


_Fetched = tuple[BinaryIO | None, "bytes | bytearray"]  # a large slice's reader and first piece; or a run's buffer


def _fetch(run: _Run) -> _Fetched:
    """A run read: a large slice opened and its first piece read; otherwise the run's framing
    and slices in one buffer, each slice read straight into its place (no copy after the
    kernel's), every file closed here, on the same thread hop."""
    if run.large:
        piece = run.segments[0]
        assert isinstance(piece, Slice)
        fp = storage().open_range(piece.key, piece.offset, piece.length)
        try:
            return fp, fp.read(READ_BYTES)
        except BaseException:
            fp.close()
            raise
    # Zero-filled first, then overwritten: never a byte of an earlier answer left in it.
    buffer = bytearray(sum(segment_length(s) for s in run.segments))
    view = memoryview(buffer)
    position = 0
    for segment in run.segments:
        if isinstance(segment, bytes):
            view[position : position + len(segment)] = segment
            position += len(segment)
            continue
        end = position + segment.length
        storage().read_into(segment.key, segment.offset, view[position:end])
        position = end
    view.release()
    return None, buffer


def _close_fetched(task: asyncio.Future[_Fetched]) -> None:
    if not task.cancelled() and task.exception() is None:  # a failed fetch closed its reader itself
        fp, _ = task.result()
        if fp is not None:
            fp.close()
