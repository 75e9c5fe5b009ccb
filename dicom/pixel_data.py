"""Where the pixel data of a stored instance lies, and where each of its frames lies.

The index records this once per instance, from the header read, so that retrieval of frames and
bulk data (PS3.18 §10.4) reads exactly their bytes and never the whole file, and so that a file
cut short inside its pixel data is refused at indexing.

- Native pixel data (PS3.5 §8.1.1): one value of defined length; frame ``i`` of a multi-frame
  image is ``frame_length`` bytes at ``i * frame_length``.
- Encapsulated pixel data (PS3.5 §8.2, Annex A.4): an undefined-length value made of items:
  the Basic Offset Table first (possibly empty), then one item per fragment, then the Sequence
  Delimitation Item. Frames are found, in this order, from the Extended Offset Table (PS3.3
  C.7.6.3.1.8), the Basic Offset Table, one fragment per frame, all fragments for one frame,
  or the JPEG end-of-image markers that end each frame's last fragment — the order and the
  rules pydicom's ``pydicom.encaps.generate_fragmented_frames`` follows, so both agree.

Offsets here are from the start of the file. Nothing is read but item headers (8 bytes each),
and a bounded number of them.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal

from dicom.dictionary import ITEM, PIXEL_DATA, PIXEL_DATA_TAGS, SEQUENCE_DELIMITATION_ITEM, UNDEFINED_LENGTH

# A hostile file could hold millions of empty items; real ones hold a few per frame.
MAX_FRAGMENTS = 1_000_000
# VRs Pixel Data may have in Explicit VR (PS3.5 §8.2, PS3.6 for 7FE0,0008/0009); all are long-length.
_PIXEL_VRS = frozenset({b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"})
# PS3.10 JPEG family end-of-image (FFD9) and JPEG 2000 end-of-codestream (FFD9 too).
_END_OF_IMAGE = b"\xff\xd9"
_END_OF_IMAGE_WINDOW_BYTES = 10  # as pydicom: the marker may be followed by padding

Problem = Literal["truncated", "malformed"]


class PixelDataError(ValueError):
    """The pixel data is cut short (``truncated``) or not laid out as PS3.5 says (``malformed``)."""

    def __init__(self, problem: Problem, message: str) -> None:
        super().__init__(message)
        self.problem: Problem = problem


@dataclass(frozen=True, slots=True)
class Extent:
    """``length`` bytes at ``offset`` from the start of the file."""

    offset: int
    length: int

    @property
    def end(self) -> int:
        return self.offset + self.length


@dataclass(frozen=True, slots=True)
class PixelData:
    """The Pixel Data element of an instance (7FE0,0010; or the float forms 7FE0,0008/0009).

    ``value``: native — the value itself; encapsulated — from the first item (the Basic Offset
    Table) to the end of the Sequence Delimitation Item. ``basic_offsets`` and ``fragments``
    (each fragment's value, item header excluded) are empty for native pixel data."""

    tag: int
    value: Extent
    encapsulated: bool
    basic_offsets: tuple[int, ...] = ()
    fragments: tuple[Extent, ...] = ()
    vr: str | None = None  # as the file's Explicit VR encoding says; None in Implicit VR

    @property
    def first_fragment_item(self) -> int:
        """Offset of the first fragment's item tag, which offset tables count from."""
        return self.fragments[0].offset - 8 if self.fragments else self.value.end


def pixel_data_read(fp: BinaryIO, position: int, end: int, *, little_endian: bool = True) -> PixelData:
    """Read the layout of the pixel data element whose tag starts at ``position`` in ``fp``.

    ``end`` is the file size. The element's own encoding is detected as pydicom detects it
    (a valid VR after the tag means Explicit VR), since real files disagree with their transfer
    syntax here. Raises PixelDataError: ``truncated`` when an item or the value passes ``end``,
    ``malformed`` for a layout PS3.5 §A.4 does not allow (a foreign tag among the items, an item
    of undefined length, more than MAX_FRAGMENTS items, an odd-length offset table).
    """
    order = "<" if little_endian else ">"
    head = _read_exactly(fp, position, 8)
    group, element = struct.unpack_from(order + "HH", head)
    tag = group << 16 | element
    if tag not in PIXEL_DATA_TAGS:
        raise PixelDataError("malformed", f"no pixel data element at offset {position}")
    vr = None
    if head[4:6] in _PIXEL_VRS:  # Explicit VR: tag, VR, 2 reserved bytes, 32-bit length
        (length,) = struct.unpack(order + "I", _read_exactly(fp, position + 8, 4))
        value_offset, vr = position + 12, head[4:6].decode("ascii")
    else:  # Implicit VR: tag, 32-bit length
        (length,) = struct.unpack_from(order + "I", head, 4)
        value_offset = position + 8
    if length != UNDEFINED_LENGTH:
        if value_offset + length > end:
            raise PixelDataError("truncated", "file ends inside the pixel data")
        return PixelData(tag, Extent(value_offset, length), encapsulated=False, vr=vr)
    if tag != PIXEL_DATA:
        raise PixelDataError("malformed", "float pixel data cannot be encapsulated (PS3.5 §8.2)")
    return _encapsulated(fp, value_offset, end, order, vr)


def _encapsulated(fp: BinaryIO, value_offset: int, end: int, order: str, vr: str | None) -> PixelData:
    """Walk the items of encapsulated pixel data (PS3.5 §A.4) from ``value_offset``."""
    position = value_offset
    items: list[Extent] = []
    while True:
        group, element, length = struct.unpack(order + "HHI", _read_exactly(fp, position, 8, end=end))
        if (group, element) == SEQUENCE_DELIMITATION_ITEM:
            position += 8
            break
        if (group, element) != ITEM:
            raise PixelDataError("malformed", f"({group:04X},{element:04X}) among the pixel data items")
        if length == UNDEFINED_LENGTH:
            raise PixelDataError("malformed", "a pixel data item of undefined length")
        if len(items) > MAX_FRAGMENTS:
            raise PixelDataError("malformed", f"more than {MAX_FRAGMENTS} pixel data fragments")
        if position + 8 + length > end:
            raise PixelDataError("truncated", "file ends inside the pixel data")
        items.append(Extent(position + 8, length))
        position += 8 + length
    if not items:
        raise PixelDataError("malformed", "encapsulated pixel data without a Basic Offset Table item")
    table, *fragments = items
    return PixelData(
        PIXEL_DATA,
        Extent(value_offset, position - value_offset),
        encapsulated=True,
        basic_offsets=_offsets(fp, table, order),
        fragments=tuple(fragments),
        vr=vr,
    )


def _offsets(fp: BinaryIO, table: Extent, order: str) -> tuple[int, ...]:
    """The Basic Offset Table's 32-bit offsets (PS3.5 §A.4, Table A.4-1)."""
    if table.length % 4:
        raise PixelDataError("malformed", "the Basic Offset Table's length is not a multiple of 4")
    if not table.length:
        return ()
    raw = _read_exactly(fp, table.offset, table.length)
    return struct.unpack(f"{order}{table.length // 4}I", raw)


def frame_extents(
    fp: BinaryIO,
    pixel_data: PixelData,
    *,
    number_of_frames: int,
    frame_length: int | None = None,
    extended_offsets: tuple[Sequence[int], Sequence[int]] | None = None,
) -> list[tuple[Extent, ...]]:
    """Each frame's bytes, as the extents that make it up (one for native data; a frame's
    fragments, in order, for encapsulated data).

    ``frame_length`` is Rows × Columns × Samples per Pixel × Bits Allocated / 8, needed for
    native data. ``extended_offsets`` is (Extended Offset Table, its lengths), 64-bit values
    decoded, when the instance has them. Raises PixelDataError when the frames cannot be found
    (fewer fragments than frames, offsets past the data, native data shorter than its frames).
    """
    if number_of_frames < 1:
        raise PixelDataError("malformed", "Number of Frames must be at least 1")
    if not pixel_data.encapsulated:
        return _native_frames(pixel_data, number_of_frames, frame_length)
    if extended_offsets is not None:
        return _by_extended_offsets(pixel_data, *extended_offsets)
    if pixel_data.basic_offsets:
        return _by_basic_offsets(pixel_data)
    fragments = pixel_data.fragments
    if len(fragments) == 1 or number_of_frames == 1:
        return [fragments]
    if len(fragments) == number_of_frames:
        return [(fragment,) for fragment in fragments]
    if len(fragments) < number_of_frames:
        raise PixelDataError("malformed", f"{len(fragments)} fragments cannot hold {number_of_frames} frames")
    return _by_end_of_image(fp, fragments)


def _native_frames(pixel_data: PixelData, number_of_frames: int, frame_length: int | None) -> list[tuple[Extent, ...]]:
    if number_of_frames == 1 and frame_length is None:
        return [(pixel_data.value,)]
    if frame_length is None or frame_length <= 0:
        raise PixelDataError("malformed", "native multi-frame pixel data needs a frame length")
    if frame_length * number_of_frames > pixel_data.value.length:
        raise PixelDataError("truncated", f"pixel data holds fewer than {number_of_frames} frames")
    start = pixel_data.value.offset
    return [(Extent(start + i * frame_length, frame_length),) for i in range(number_of_frames)]


def _by_extended_offsets(
    pixel_data: PixelData, offsets: Sequence[int], lengths: Sequence[int]
) -> list[tuple[Extent, ...]]:
    """PS3.3 C.7.6.3.1.8: one fragment per frame, at offsets from the first fragment's item tag."""
    if len(offsets) != len(lengths):
        raise PixelDataError("malformed", "the Extended Offset Table and its lengths differ in size")
    base, stop = pixel_data.first_fragment_item, pixel_data.value.end
    frames: list[tuple[Extent, ...]] = [
        (Extent(base + offset + 8, length),) for offset, length in zip(offsets, lengths, strict=True)
    ]
    if any(frame[0].end > stop for frame in frames):
        raise PixelDataError("malformed", "an Extended Offset Table entry points past the pixel data")
    return frames


def _by_basic_offsets(pixel_data: PixelData) -> list[tuple[Extent, ...]]:
    """Frame ``i`` is the fragments from Basic Offset Table entry ``i`` up to entry ``i + 1``."""
    base = pixel_data.first_fragment_item
    starts = [base + offset for offset in pixel_data.basic_offsets]
    if starts != sorted(starts) or starts[0] != base:
        raise PixelDataError("malformed", "the Basic Offset Table does not start at 0 and ascend")
    frames: list[list[Extent]] = [[] for _ in starts]
    frame = 0
    for fragment in pixel_data.fragments:
        while frame + 1 < len(starts) and fragment.offset - 8 >= starts[frame + 1]:
            frame += 1
        frames[frame].append(fragment)
    if any(not fragments for fragments in frames):
        raise PixelDataError("malformed", "a Basic Offset Table entry names no fragment")
    return [tuple(fragments) for fragments in frames]


def _by_end_of_image(fp: BinaryIO, fragments: tuple[Extent, ...]) -> list[tuple[Extent, ...]]:
    """No offset table and more fragments than frames: a frame ends with the fragment whose
    last bytes hold the JPEG end-of-image marker (pydicom's rule, for JPEG-family data)."""
    frames: list[tuple[Extent, ...]] = []
    current: list[Extent] = []
    for fragment in fragments:
        current.append(fragment)
        window = min(fragment.length, _END_OF_IMAGE_WINDOW_BYTES)
        if _END_OF_IMAGE in _read_exactly(fp, fragment.end - window, window):
            frames.append(tuple(current))
            current = []
    if current:
        frames.append(tuple(current))
    return frames


def _read_exactly(fp: BinaryIO, offset: int, size: int, *, end: int | None = None) -> bytes:
    if end is not None and offset + size > end:
        raise PixelDataError("truncated", "file ends inside the pixel data")
    fp.seek(offset)
    data = fp.read(size)
    if len(data) != size:
        raise PixelDataError("truncated", "file ends inside the pixel data")
    return data
