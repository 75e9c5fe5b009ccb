"""Just enough of DICOM PS3.10 §7.1 to tell a Part-10 file and name it.

A Part-10 file is a 128-byte preamble, the prefix ``DICM`` and the File Meta Information group
(0002,eeee) in Explicit VR Little Endian. The client reads that group to skip what the server
would refuse (422) before sending a byte, and to name retrieved instances by their Media
Storage SOP Instance UID (0002,0003). No pydicom: the group is a dozen bytes of framing, and
the client stays a two-dependency install.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

PREAMBLE_LEN = 128
HEAD_LEN = 132
MAGIC = b"DICM"
META_MAX = 64 * 1024  # the server's bound on the meta group; real ones are a few hundred bytes
READ_AHEAD = HEAD_LEN + META_MAX + 16
# PS3.5 §7.1.2: these explicit VRs have 2 reserved bytes and a 32-bit length.
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"})
_UID_RE = re.compile(r"[0-9]+(?:\.[0-9]+)*")  # PS3.5 §9.1: digits and dots, at most 64


class NotPart10(ValueError):
    """Not a DICOM Part-10 file (or its meta group is broken); ``str(exc)`` says why."""


@dataclass(frozen=True, slots=True)
class FileMeta:
    """The File Meta elements the client uses (PS3.10 table 7.1-1); ``end`` is the data set's offset."""

    sop_class_uid: str
    sop_instance_uid: str | None
    transfer_syntax_uid: str
    end: int


def has_magic(head: bytes) -> bool:
    """True when ``head`` (the first 132 bytes or more) carries ``DICM`` at offset 128."""
    return len(head) >= HEAD_LEN and head[PREAMBLE_LEN:HEAD_LEN] == MAGIC


def read_meta(prefix: bytes) -> FileMeta:
    """Parse the File Meta group from a file's first bytes (at least the whole group).

    Raises NotPart10 without the magic, when the group is malformed, cut short, over 64 KiB,
    or lacks its Type 1 Transfer Syntax UID or Media Storage SOP Class UID.
    """
    if not has_magic(prefix):
        raise NotPart10("no DICM prefix at offset 128")
    pos, end = HEAD_LEN, None  # end: set by a leading (0002,0000) group length
    values: dict[int, bytes] = {}
    while pos != end and _element_follows(prefix, pos, first=not values, sized=end is not None):
        element, vr, value, next_pos = _element(prefix, pos)
        if element == 0x0000 and not values and vr == b"UL" and len(value) == 4:
            end = next_pos + struct.unpack("<I", value)[0]
        values[element] = value
        pos = next_pos
    sop_class, transfer_syntax = _uid(values.get(0x0002)), _uid(values.get(0x0010))
    if sop_class is None or transfer_syntax is None:
        raise NotPart10("the file meta group lacks its SOP Class or Transfer Syntax UID")
    return FileMeta(sop_class, _uid(values.get(0x0003)), transfer_syntax, pos)


def _element_follows(prefix: bytes, pos: int, *, first: bool, sized: bool) -> bool:
    """Whether a meta group element starts at ``pos``. A group with no group length (not
    ``sized``) ends at the end of the file or at the first tag of another group, once it has an
    element; anything else that is not a group 0002 element is a broken group."""
    if len(prefix) < pos + 8:
        if not sized and not first and pos == len(prefix):
            return False
        raise NotPart10("the file ends inside its meta group")
    if struct.unpack_from("<H", prefix, pos)[0] == 0x0002:
        return True
    if first or sized:
        raise NotPart10("malformed file meta group")
    return False


def _element(prefix: bytes, pos: int) -> tuple[int, bytes, bytes, int]:
    """The Explicit VR Little Endian element at ``pos`` (PS3.5 §7.1.2): its element number,
    VR and value, and where the next element starts."""
    element = struct.unpack_from("<H", prefix, pos + 2)[0]
    vr = prefix[pos + 4 : pos + 6]
    if not vr.isalpha() or not vr.isupper():
        raise NotPart10("the file meta group is not Explicit VR Little Endian")
    if vr in _LONG_VRS:
        header, length = 12, struct.unpack_from("<I", prefix, pos + 8)[0] if len(prefix) >= pos + 12 else -1
    else:
        header, length = 8, struct.unpack_from("<H", prefix, pos + 6)[0]
    value_end = pos + header + length
    if length < 0 or length == 0xFFFFFFFF or value_end > HEAD_LEN + META_MAX:
        raise NotPart10("malformed file meta group")
    if len(prefix) < value_end:
        raise NotPart10("the file ends inside its meta group")
    return element, vr, prefix[pos + header : value_end], value_end


def read_file_meta(path: Path) -> FileMeta:
    """``read_meta`` of a file on disk (reads at most ~64 KiB). Raises NotPart10 or OSError."""
    with path.open("rb") as fh:
        return read_meta(fh.read(READ_AHEAD))


def _uid(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    text = raw.rstrip(b"\0 ").decode("ascii", errors="replace")
    if not text:
        return None
    if len(text) > 64 or not _UID_RE.fullmatch(text):
        raise NotPart10("malformed UID in the file meta group")
    return text
