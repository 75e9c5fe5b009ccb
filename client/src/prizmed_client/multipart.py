"""Multipart framing of DICOM instances (RFC 2046 §5.1, as DICOMweb uses it in PS3.18 §8.6.1.2).

``multipart_body`` writes the body of an ``application/dicom+stream`` upload (framed like a
STOW-RS request) from files, piece by piece; ``MultipartReader`` splits a WADO-RS
``multipart/related; type="application/dicom"`` answer into parts as its bytes arrive, holding
at most one delimiter's worth of bytes besides the piece it was fed.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

READ_SIZE = 1024 * 1024
_PARAM_RE = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]*)')
MAX_PART_HEADER = 16 * 1024


class MultipartError(ValueError):
    """The body is not a well-formed multipart body."""


def new_boundary() -> str:
    """A boundary no DICOM byte sequence will contain by chance (RFC 2046 §5.1.1: ≤ 70 chars)."""
    return f"prizmed-{uuid.uuid4().hex}"


def _part_head(boundary: str) -> bytes:
    return f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode("ascii")


def _closing(boundary: str) -> bytes:
    return f"\r\n--{boundary}--\r\n".encode("ascii")


def multipart_length(sizes: Sequence[int], boundary: str) -> int:
    """The exact byte length of ``multipart_body`` for files of these sizes."""
    head = len(_part_head(boundary))
    return sum(sizes) + len(sizes) * head + 2 * (len(sizes) - 1) + len(_closing(boundary))


def multipart_body(paths: Sequence[Path], boundary: str, read_size: int = READ_SIZE) -> Iterator[bytes]:
    """The body's pieces: each file as one ``application/dicom`` part, read ``read_size`` at a time."""
    for index, path in enumerate(paths):
        yield (b"\r\n" if index else b"") + _part_head(boundary)
        with path.open("rb") as fh:
            while piece := fh.read(read_size):
                yield piece
    yield _closing(boundary)


def boundary_of(content_type: str) -> str:
    """The ``boundary`` parameter of a Content-Type value (quoted or not). Raises MultipartError."""
    for name, raw in _PARAM_RE.findall(content_type[content_type.find(";") :] if ";" in content_type else ""):
        if name.lower() == "boundary":
            value: str = raw[1:-1].replace('\\"', '"').replace("\\\\", "\\") if raw.startswith('"') else raw
            if 1 <= len(value) <= 70:
                return value
    raise MultipartError(f"no usable boundary in {content_type!r}")


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins; its header names lowercased."""

    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class PartData:
    """The next bytes of the current part."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""


Event = PartStart | PartData | PartEnd


class MultipartReader:
    """Push parser: ``feed`` pieces, get events; ``close`` at the end (raises if cut short).

    The preamble before the first delimiter and the epilogue after the last are ignored
    (RFC 2046 §5.1.1); transport padding after a delimiter is tolerated.
    """

    def __init__(self, boundary: str) -> None:
        self._delimiter = b"\r\n--" + boundary.encode("ascii")
        self._buffer = b"\r\n"  # so a delimiter at the very start matches like the others
        self._state = "preamble"  # preamble | headers | body | done
        self._events: list[Event] = []

    def feed(self, data: bytes) -> list[Event]:
        """Parse more bytes; the events they complete, in order. Raises MultipartError."""
        self._buffer += data
        self._events = []
        while self._step():
            pass
        return self._events

    def close(self) -> None:
        """End of body: raises MultipartError unless the closing delimiter was seen."""
        if self._state != "done":
            raise MultipartError("the multipart body ended before its closing delimiter")

    def _step(self) -> bool:
        if self._state == "done":
            self._buffer = b""
            return False
        if self._state == "headers":
            return self._headers()
        found = self._buffer.find(self._delimiter)
        # Without a delimiter, keep what could still be the start of one.
        self._release(found if found >= 0 else len(self._buffer) - (len(self._delimiter) - 1))
        return found >= 0 and self._delimiter_line()

    def _release(self, end: int) -> None:
        """Let go of the buffer's bytes before ``end``: a part's data in a body, dropped in the preamble."""
        if end <= 0:
            return
        if self._state == "body":
            self._events.append(PartData(self._buffer[:end]))
        self._buffer = self._buffer[end:]

    def _delimiter_line(self) -> bool:
        """The buffer starts with a delimiter: the part before it ends, then the closing
        delimiter ends the body or a part's header follows. False until the line is all in."""
        after = len(self._delimiter)
        closing = self._buffer[after : after + 2] == b"--"
        line_end = self._buffer.find(b"\r\n", after)
        if len(self._buffer) < after + 2 or (line_end < 0 and not closing):
            return False  # need the rest of the delimiter line
        if self._state == "body":
            self._events.append(PartEnd())
        if closing:
            self._state = "done"
            return True
        if self._buffer[after:line_end].strip(b" \t"):
            raise MultipartError("garbage after a multipart delimiter")
        self._buffer = self._buffer[line_end + 2 :]
        self._state = "headers"
        return True

    def _headers(self) -> bool:
        end = self._buffer.find(b"\r\n\r\n")
        if self._buffer.startswith(b"\r\n"):
            end, skip = 0, 2  # a part with no header at all
        else:
            skip = 4
        if end < 0:
            if len(self._buffer) > MAX_PART_HEADER:
                raise MultipartError("a part's header is too long")
            return False
        headers: dict[str, str] = {}
        for line in self._buffer[:end].decode("latin-1").split("\r\n") if end else []:
            name, colon, value = line.partition(":")
            if not colon:
                raise MultipartError("malformed part header line")
            headers[name.strip().lower()] = value.strip()
        self._events.append(PartStart(headers))
        # An empty body leaves "\r\n--boundary" here: that CRLF belongs to the delimiter.
        self._buffer = self._buffer[end + skip :]
        self._state = "body"
        return True
