"""Incremental parser for multipart bodies framed like DICOMweb STOW-RS.

``POST /dicom/stream`` with ``application/dicom+stream; boundary=...`` carries many Part-10
instances framed exactly like a STOW-RS ``multipart/related; type="application/dicom"`` body
(DICOM PS3.18 §10.5), whose framing is MIME multipart (RFC 2046 §5.1). The parser is push-style:
the request handler feeds pieces as they arrive and gets events back, so part bytes go to
storage as they arrive and memory stays bounded whatever the body size.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import TypeAlias

MAX_HEADER_BYTES = 16 * 1024
# RFC 2046 puts no limit on transport padding; real clients send none. The cap bounds what we
# must hold back while deciding whether "--boundary" really starts a delimiter line.
MAX_PADDING_BYTES = 64

# RFC 2046 §5.1.1: bchars, 1-70 of them, and the last one is not a space.
_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
# RFC 9110 §5.6.6 parameters: name = token or quoted-string, with lenient whitespace.
_PARAM_RE = re.compile(r';\s*([^\s;=]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^\s;]*)')
_QUOTED_PAIR_RE = re.compile(r"\\(.)")


class MultipartError(ValueError):
    """The body is not a well-formed multipart body; ``str(exc)`` is safe to show a client."""


@dataclass(frozen=True, slots=True)
class PartStart:
    """A part begins; header names are lowercased (RFC 2045 §5.1: case-insensitive).
    ``offset``: where its body starts in the multipart body (bytes from the first fed): the
    part's bytes are the next ones from there, contiguous up to its delimiter."""

    headers: dict[str, str] = field(default_factory=dict)
    offset: int = 0


@dataclass(frozen=True, slots=True)
class PartData:
    """The next bytes of the current part's body, in order."""

    data: bytes


@dataclass(frozen=True, slots=True)
class PartEnd:
    """The current part is complete."""


Event: TypeAlias = PartStart | PartData | PartEnd


def boundary_from_content_type(value: str) -> str:
    """Return the ``boundary`` parameter of a Content-Type header value (RFC 2046 §5.1.1).

    Parameter names are case-insensitive and may be quoted-strings; other parameters
    (``type="application/dicom"``, ``start=...``; PS3.18 §10.5) are ignored.
    """
    found = content_type_parameter(value, "boundary")
    if not found:
        raise MultipartError("Content-Type has no boundary parameter")
    if len(found) > 1:
        raise MultipartError("Content-Type has more than one boundary parameter")
    check_boundary(found[0])
    return found[0]


def content_type_parameter(value: str, name: str) -> list[str]:
    """Every value of the parameter ``name`` (case-insensitive) of a Content-Type or Accept
    media range (RFC 9110 §5.6.6), quoted-strings unquoted."""
    return [
        _unquote(raw)
        for found, raw in _PARAM_RE.findall(value[value.find(";") :] if ";" in value else "")
        if found.lower() == name.lower()
    ]


def _unquote(raw: str) -> str:
    """Strip the quotes and quoted-pair escapes of an RFC 9110 §5.6.4 quoted-string."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return _QUOTED_PAIR_RE.sub(r"\1", raw[1:-1])
    return raw


def check_boundary(boundary: str) -> None:
    """Raise MultipartError unless ``boundary`` is 1-70 bchars (RFC 2046 §5.1.1)."""
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise MultipartError("boundary must be 1 to 70 characters allowed by RFC 2046")


class _State(enum.Enum):
    PREAMBLE = enum.auto()  # before the first delimiter: discarded
    DELIMITER = enum.auto()  # just after "--boundary": close, padding + line break, or data?
    HEADERS = enum.auto()
    BODY = enum.auto()
    EPILOGUE = enum.auto()  # after the close delimiter: discarded
    FAILED = enum.auto()


class MultipartParser:
    """Push parser for an RFC 2046 §5.1 multipart body; ``feed`` returns events in order.

    It holds back at most the delimiter length plus MAX_PADDING_BYTES bytes of part data (while it
    decides whether they start a delimiter), and header lines up to MAX_HEADER_BYTES.
    """

    def __init__(self, boundary: str) -> None:
        check_boundary(boundary)
        dash = b"--" + boundary.encode("ascii")
        self._body_delim = b"\r\n" + dash  # RFC 2046: the CRLF belongs to the delimiter
        # Preamble lines may end with a bare LF; it is discarded, so leniency costs nothing.
        self._preamble_delim = b"\n" + dash
        # A body may open with "--boundary" on its first line: pretend a line break precedes.
        self._buf = bytearray(b"\n")
        self._state = _State.PREAMBLE
        self._in_part = False
        self._headers: dict[str, str] = {}
        self._last_header: str | None = None
        self._header_bytes = 0
        self._fed = 0  # body bytes fed so far

    def feed(self, data: bytes) -> list[Event]:
        """Parse the next piece of the body. Raises MultipartError on malformed framing."""
        if self._state is _State.FAILED:
            raise MultipartError("multipart body already rejected")
        if self._state is _State.EPILOGUE:
            return []  # RFC 2046: the epilogue is to be ignored; don't even buffer it
        self._buf += data
        self._fed += len(data)
        events: list[Event] = []
        try:
            while self._step(events):
                pass
        except MultipartError:
            self._state = _State.FAILED
            raise
        return events

    def close(self) -> None:
        """Call at end of body: raises MultipartError if the close delimiter never came."""
        if self._state is not _State.EPILOGUE:
            self._state = _State.FAILED
            raise MultipartError("body ended before the closing boundary (truncated)")

    def _step(self, events: list[Event]) -> bool:
        """Advance by one token; False when more bytes are needed."""
        if self._state is _State.PREAMBLE:
            return self._skip_preamble()
        if self._state is _State.DELIMITER:
            return self._after_delimiter(events)
        if self._state is _State.HEADERS:
            return self._header_line(events)
        if self._state is _State.BODY:
            return self._body(events)
        self._buf.clear()  # epilogue
        return False

    def _skip_preamble(self) -> bool:
        at = self._buf.find(self._preamble_delim)
        if at < 0:
            del self._buf[: -(len(self._preamble_delim) - 1)]
            return False
        del self._buf[: at + len(self._preamble_delim)]
        self._state = _State.DELIMITER
        return True

    def _body(self, events: list[Event]) -> bool:
        # bytes.find is a C substring search: the cost per byte stays far below a Python loop.
        at = self._buf.find(self._body_delim)
        if at >= 0:
            if at:
                events.append(PartData(_take(self._buf, at)))
            del self._buf[: len(self._body_delim)]
            self._state = _State.DELIMITER
            return True
        # Only a tail starting with CR can be the start of a split delimiter; emit the rest.
        safe = max(0, len(self._buf) - len(self._body_delim) + 1)
        cr = self._buf.find(b"\r", safe)
        safe = len(self._buf) if cr < 0 else cr
        if safe:
            events.append(PartData(_take(self._buf, safe)))
        return False

    def _after_delimiter(self, events: list[Event]) -> bool:
        """Decide what follows "--boundary" (RFC 2046 §5.1.1): "--" closes, optional padding and
        a line break open a part; anything else means the match was part data after all."""
        buf = self._buf
        if bytes(buf[:2]) in (b"", b"-"):
            return False
        if buf.startswith(b"--"):
            return self._close(events)
        newline = buf.find(b"\n", 0, MAX_PADDING_BYTES + 2)
        if newline >= 0:
            line = bytes(buf[:newline]).removesuffix(b"\r")
            if line.strip(b" \t"):
                return self._not_a_delimiter(events)
            del buf[: newline + 1]
            return self._open_part(events)
        pending = bytes(buf[: MAX_PADDING_BYTES + 2]).removesuffix(b"\r")
        if pending.strip(b" \t"):
            return self._not_a_delimiter(events)
        if len(buf) > MAX_PADDING_BYTES + 1:
            raise MultipartError("transport padding after a boundary is too long")
        return False

    def _not_a_delimiter(self, events: list[Event]) -> bool:
        if self._in_part:
            events.append(PartData(self._body_delim))
            self._state = _State.BODY
        else:
            self._state = _State.PREAMBLE
        return True

    def _close(self, events: list[Event]) -> bool:
        if self._in_part:
            events.append(PartEnd())
        self._in_part = False
        self._state = _State.EPILOGUE
        self._buf.clear()
        return False

    def _open_part(self, events: list[Event]) -> bool:
        if self._in_part:
            events.append(PartEnd())
        self._in_part = False
        self._headers, self._last_header, self._header_bytes = {}, None, 0
        self._state = _State.HEADERS
        return True

    def _header_line(self, events: list[Event]) -> bool:
        """Read one header line (RFC 2046 §5.1: RFC 822 style); a blank line ends the block."""
        newline = self._buf.find(b"\n")
        used = self._header_bytes + (newline + 1 if newline >= 0 else len(self._buf))
        if used > MAX_HEADER_BYTES:
            raise MultipartError("part headers are larger than 16 KiB")
        if newline < 0:
            return False
        self._header_bytes = used
        line = _take(self._buf, newline + 1).removesuffix(b"\n").removesuffix(b"\r")
        if not line:
            # A part may have no headers at all: RFC 2046 then implies text/plain, but here
            # the caller treats every part as application/dicom (PS3.18 §10.5).
            # The buffer holds the body's unparsed tail (the pretended line break long gone).
            events.append(PartStart(self._headers, self._fed - len(self._buf)))
            self._in_part = True
            self._state = _State.BODY
        else:
            self._add_header(line.decode("latin-1"))
        return True

    def _add_header(self, line: str) -> None:
        if line[0] in " \t" and self._last_header is not None:
            # obs-fold (RFC 5322 §2.2.3): a continuation of the previous header's value
            self._headers[self._last_header] += " " + line.strip()
            return
        raw_name, colon, value = line.partition(":")
        name = raw_name.strip().lower()
        if not colon or not name or any(c in name for c in " \t"):
            raise MultipartError("malformed part header line")
        value = value.strip()
        previous = self._headers.get(name)
        # RFC 9110 §5.3: repeated fields combine into one comma-separated value.
        self._headers[name] = value if previous is None else f"{previous}, {value}"
        self._last_header = name


def _take(buf: bytearray, count: int) -> bytes:
    """Remove and return the first ``count`` bytes of ``buf`` with a single copy."""
    with memoryview(buf) as view, view[:count] as head:
        out = bytes(head)
    del buf[:count]
    return out
