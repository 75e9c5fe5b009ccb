"""Early validation of a DICOM Part-10 stream (DICOM PS3.10 §7.1).

A Part-10 file is a 128-byte preamble, the 4-byte prefix ``DICM`` and the File Meta
Information group (0002,eeee), always in Explicit VR Little Endian (PS3.10 §7.1). This module
checks just enough of that to refuse a non-DICOM upload from its first bytes (API.md §1: 422 as
soon as the body shows it) without ever reading the data set that follows the meta group.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from dicom.dictionary import (
    FILE_META_GROUP,
    FILE_META_INFORMATION_GROUP_LENGTH,
    LONG_LENGTH_VRS,
    MEDIA_STORAGE_SOP_CLASS_UID,
    MEDIA_STORAGE_SOP_INSTANCE_UID,
    TRANSFER_SYNTAX_UID,
    UNDEFINED_LENGTH,
)
from dicom.uid import InvalidUid, uid_parse

PREAMBLE_BYTES = 128
HEAD_BYTES = 132  # the preamble and the DICM prefix
MAGIC = b"DICM"
# PS3.10 sets no limit; real meta groups are a few hundred bytes, and the cap keeps the
# bytes we hold per upload bounded however hostile the client.
META_MAX_BYTES = 64 * 1024

_TOO_SHORT = "body shorter than a DICOM preamble"
_VR_RE = re.compile(rb"[A-Z]{2}")
_META_END_MAX_BYTES = HEAD_BYTES + META_MAX_BYTES
# Bytes Part10Head keeps while the meta group is incomplete: the cap plus the next tag.
_PREFIX_MAX_BYTES = _META_END_MAX_BYTES + 16


class NotDicom(ValueError):
    """The stream is not a DICOM Part-10 file; ``str(exc)`` is safe to show to a client."""


class FileMetaTruncated(NotDicom):
    """The stream ended inside the File Meta group."""


class FileMetaInvalidUid(NotDicom):
    """A UID of the File Meta group is invalid by the one UID rule (dicom/uid.py)."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """The File Meta Information elements the upload path needs (PS3.10 §7.1, table 7.1-1)."""

    transfer_syntax_uid: str
    media_storage_sop_class_uid: str
    media_storage_sop_instance_uid: str | None
    end: int  # offset of the first data set byte, i.e. the end of the meta group


def check_head(head: bytes) -> None:
    """Raise NotDicom unless ``head`` carries the ``DICM`` prefix at offset 128 (PS3.10 §7.1)."""
    if len(head) < HEAD_BYTES:
        raise NotDicom(_TOO_SHORT)
    if head[PREAMBLE_BYTES:HEAD_BYTES] != MAGIC:
        raise NotDicom("no DICM prefix at offset 128: not a DICOM Part-10 file")


def file_meta_read(fp: BinaryIO) -> FileMeta:
    """The File Meta group of the Part-10 file ``fp``, read from its position (at most ~64 KiB):
    the parse Part10Head makes at ingest, for a file stored before ingest kept its result.
    Raises NotDicom (FileMetaTruncated when the file ends inside the group)."""
    prefix = bytearray()
    need = HEAD_BYTES + 4
    while True:
        # About the bytes the walk asks for: little of the data set is read past the group,
        # and growing by at least an eighth keeps a group of tiny elements from costing
        # quadratic time (each walk starts over).
        piece = fp.read(need - len(prefix))
        prefix += piece
        result = file_meta_scan(prefix, at_eof=len(prefix) < need)
        if isinstance(result, FileMeta):
            return result
        need = min(max(result, len(prefix) + len(prefix) // 8), _PREFIX_MAX_BYTES)


def file_meta_scan(prefix: bytes | bytearray, *, at_eof: bool) -> FileMeta | int:
    """Parse the File Meta group (0002,eeee) from the first bytes of a Part-10 stream: the
    group, or the prefix length needed before trying again (unless ``at_eof`` says the stream
    has ended).

    ``prefix`` starts at the preamble (offset 0); the group starts at offset 132 in Explicit VR
    Little Endian (PS3.10 §7.1). Raises NotDicom when the group is malformed, longer than 64 KiB
    or lacks a Transfer Syntax UID or Media Storage SOP Class UID (both Type 1).
    """
    check_head(bytes(prefix[:HEAD_BYTES]))
    pos, end = HEAD_BYTES, None  # end: set by (0002,0000) group length when present
    values: dict[int, bytes] = {}
    while pos != end:
        step = _element(prefix, pos, end, at_eof=at_eof, first=not values)
        if step is None:
            break
        if isinstance(step, int):
            return step
        start, (tag, value, pos) = pos, step
        if tag == FILE_META_INFORMATION_GROUP_LENGTH and not values:
            end = pos + _group_length(prefix, start, len(value))
            if end > _META_END_MAX_BYTES:
                raise NotDicom("file meta group is longer than allowed")
        values[tag] = value
    return _file_meta(values, pos)


def _element(
    prefix: bytes | bytearray, pos: int, end: int | None, *, at_eof: bool, first: bool
) -> tuple[int, bytes, int] | int | None:
    """The group element at ``pos``: (tag, value, where the next one starts); or the prefix
    length needed to read it; or None where the group has ended before it."""
    if len(prefix) < pos + 4:
        # Without a group length the group ends where a non-0002 tag starts (or at EOF).
        if at_eof and pos == len(prefix) and end is None and not first:
            return None
        return _more(pos + 4, at_eof)
    group, element = struct.unpack_from("<HH", prefix, pos)
    if group != FILE_META_GROUP:
        if first:
            raise NotDicom("no File Meta Information group after the DICM prefix")
        if end is not None:
            raise NotDicom("file meta group shorter than its group length")
        return None
    header, length = _element_header(prefix, pos)
    if header == 0:
        return _more(length, at_eof)
    value_end = pos + header + length
    if value_end > _META_END_MAX_BYTES or (end is not None and value_end > end):
        raise NotDicom("file meta group is longer than allowed")
    if len(prefix) < value_end:
        return _more(value_end, at_eof)
    return group << 16 | element, bytes(prefix[pos + header : value_end]), value_end


def _more(needed: int, at_eof: bool) -> int:
    """Ask for ``needed`` bytes, unless the stream already ended inside the meta group."""
    if at_eof:
        raise FileMetaTruncated("body ends inside the DICOM file meta group")
    return needed


def _element_header(prefix: bytes | bytearray, pos: int) -> tuple[int, int]:
    """Return (header size, value length) of the Explicit VR LE element at ``pos``
    (PS3.5 §7.1.2), or (0, prefix length needed) while its header is incomplete."""
    if len(prefix) < pos + 8:
        return 0, pos + 8
    vr = bytes(prefix[pos + 4 : pos + 6])
    if not _VR_RE.fullmatch(vr):
        raise NotDicom("file meta group is not Explicit VR Little Endian")
    if vr not in LONG_LENGTH_VRS:
        return 8, struct.unpack_from("<H", prefix, pos + 6)[0]
    if len(prefix) < pos + 12:
        return 0, pos + 12
    length: int = struct.unpack_from("<I", prefix, pos + 8)[0]
    if length == UNDEFINED_LENGTH:  # undefined length has no place in the meta group
        raise NotDicom("undefined length in the file meta group")
    return 12, length


def _group_length(prefix: bytes | bytearray, pos: int, length: int) -> int:
    """Read (0002,0000) File Meta Information Group Length: UL, 4 bytes (PS3.10 §7.1)."""
    if prefix[pos + 4 : pos + 6] != b"UL" or length != 4:
        raise NotDicom("malformed file meta group length (0002,0000)")
    value: int = struct.unpack_from("<I", prefix, pos + 8)[0]
    return value


def _file_meta(values: dict[int, bytes], end: int) -> FileMeta:
    """Build FileMeta from the raw group values; the two UIDs PS3.10 marks Type 1 must be there."""
    transfer_syntax = _uid(values.get(TRANSFER_SYNTAX_UID))
    sop_class = _uid(values.get(MEDIA_STORAGE_SOP_CLASS_UID))
    if transfer_syntax is None:
        raise NotDicom("file meta group has no Transfer Syntax UID (0002,0010)")
    if sop_class is None:
        raise NotDicom("file meta group has no Media Storage SOP Class UID (0002,0002)")
    return FileMeta(transfer_syntax, sop_class, _uid(values.get(MEDIA_STORAGE_SOP_INSTANCE_UID)), end)


def _uid(raw: bytes | None) -> str | None:
    """A UI value of the group by the one UID rule (dicom/uid.py); None when absent or empty."""
    if raw is None:
        return None
    try:
        return uid_parse(raw).value
    except InvalidUid as exc:
        if exc.reason == "empty":
            return None
        raise FileMetaInvalidUid("malformed UID in the file meta group") from None


class Part10Head:
    """Check a Part-10 stream as it arrives: hold back the first 132 bytes, then pass through.

    ``feed`` returns the bytes to store: nothing until the head is complete, then the head with
    a zeroed preamble, then each piece unchanged (no copy). It keeps a bounded copy of the first
    bytes until the meta group parses, so a broken meta group is refused early too.
    """

    def __init__(self) -> None:
        self._prefix = bytearray()
        self._done = False
        self._meta: FileMeta | None = None
        self._need = HEAD_BYTES + 4  # prefix length at which parsing the meta can progress

    @property
    def done(self) -> bool:
        """True once the 132-byte head has been seen and checked."""
        return self._done

    @property
    def meta(self) -> FileMeta | None:
        """The parsed File Meta group, once it has fully arrived."""
        return self._meta

    def feed(self, data: bytes) -> bytes:
        """Take the next piece of the stream; return what to write. Raises NotDicom."""
        if self._done:
            if self._meta is None:
                self._prefix += data[: max(0, _PREFIX_MAX_BYTES - len(self._prefix))]
                self._try_meta(self._prefix)
            return data
        if len(self._prefix) + len(data) < HEAD_BYTES:
            self._prefix += data
            return b""
        # CVE-2019-11687: the free-form preamble can hold a PE or ELF header that turns a valid
        # DICOM file into an executable polyglot. PS3.10 allows an all-zero one, so zeroing it
        # loses nothing a viewer needs (only TIFF/DICOM dual-format files lose their TIFF face).
        # One copy of the piece (often a whole instance), and the meta group read from it.
        skip = max(0, PREAMBLE_BYTES - len(self._prefix))
        out = b"".join((bytes(PREAMBLE_BYTES), self._prefix[PREAMBLE_BYTES:], memoryview(data)[skip:]))
        check_head(out)
        self._done = True
        self._try_meta(out)
        return out

    def finish(self) -> None:
        """Call at end of stream: raises NotDicom if the head or the meta group is incomplete."""
        if not self._done:
            raise NotDicom(_TOO_SHORT)
        if self._meta is None:
            result = file_meta_scan(self._prefix, at_eof=True)
            assert isinstance(result, FileMeta)  # at_eof makes the scan raise or finish
            self._meta = result

    def _try_meta(self, prefix: bytes | bytearray) -> None:
        """Read the meta group from ``prefix`` (the stream's first bytes, preamble zeroed) once
        enough of it is there; until then keep at most _PREFIX_MAX_BYTES of it."""
        if len(prefix) >= self._need:
            result = file_meta_scan(prefix, at_eof=False)
            if isinstance(result, FileMeta):
                self._meta = result
                self._prefix = bytearray()
                return
            # Wait for at least twice the bytes before re-walking the group: a client feeding
            # tiny pieces of a meta group made of many tiny elements would otherwise cost
            # quadratic time. At _PREFIX_MAX_BYTES the scan always concludes (meta or NotDicom).
            self._need = min(max(result, 2 * len(prefix)), _PREFIX_MAX_BYTES)
        if prefix is not self._prefix:
            self._prefix = bytearray(prefix[:_PREFIX_MAX_BYTES])
