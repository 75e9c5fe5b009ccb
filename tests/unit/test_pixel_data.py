"""dicom.pixel_data: where the pixel data and each frame lie, checked against pydicom's own
reading of every file it ships (PS3.5 §8.2, Annex A.4; PS3.3 C.7.6.3.1.8)."""

from __future__ import annotations

import io
import struct
import warnings
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.encaps import generate_frames

from dicom.header import read_header
from dicom.pixel_data import PixelData, PixelDataError, frame_extents, pixel_data_read
from tests.support.dicomfactory import make_instance

ITEM, DELIMITER = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"


def _with_pixels(path: str) -> tuple[pydicom.Dataset, int] | None:
    """pydicom's reading of a test file that has pixel data, and where its pixel data tag is."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(path)
            ds.PixelData  # noqa: B018 - reading it is the check
            int(ds.get("NumberOfFrames", 1) or 1)
        except Exception:  # noqa: BLE001 - files pydicom itself cannot read are not the subject here
            return None
        with open(path, "rb") as fp:
            pydicom.dcmread(fp, stop_before_pixels=True)
            return ds, fp.tell()


def _frames_of(ds: pydicom.Dataset) -> tuple[int, tuple[list[int], list[int]] | None, int | None]:
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    extended = None
    if "ExtendedOffsetTable" in ds:
        table, lengths = ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths
        extended = (
            list(struct.unpack(f"<{len(table) // 8}Q", table)),
            list(struct.unpack(f"<{len(lengths) // 8}Q", lengths)),
        )
    frame_length = ds.Rows * ds.Columns * ds.get("SamplesPerPixel", 1) * ds.BitsAllocated // 8 if frames > 1 else None
    return frames, extended, frame_length


def _u64(raw: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(raw) // 8}Q", raw))


def _read(fp: io.BufferedReader | io.BytesIO, frame: tuple[object, ...]) -> bytes:
    parts = []
    for extent in frame:
        fp.seek(extent.offset)  # type: ignore[attr-defined]
        parts.append(fp.read(extent.length))  # type: ignore[attr-defined]
    return b"".join(parts)


# Deflated data sets are stored compressed: offsets in the file do not address the inflated
# pixel data (indexing inflates them first). MR_truncated.dcm is cut short on purpose.
NOT_ADDRESSABLE = {"image_dfl.dcm", "MR_truncated.dcm"}
CORPUS = [p for p in sorted(get_testdata_files()) if Path(p).name not in NOT_ADDRESSABLE]


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: Path(p).name)
def test_every_frame_equals_pydicoms(path: str) -> None:
    read = _with_pixels(path)
    if read is None:
        return  # no pixel data, or pydicom cannot read it: nothing to compare with
    ds, position = read
    frames, extended, frame_length = _frames_of(ds)
    with open(path, "rb") as fp:
        end = fp.seek(0, 2)
        layout = pixel_data_read(fp, position, end, little_endian=ds.original_encoding[1] is not False)
        if layout.encapsulated:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = list(generate_frames(ds.PixelData, number_of_frames=frames, extended_offsets=extended))
            ours = frame_extents(fp, layout, number_of_frames=frames, extended_offsets=extended)
        else:
            step = frame_length or len(ds.PixelData)
            theirs = [ds.PixelData[i * step : (i + 1) * step] for i in range(frames)]
            ours = frame_extents(fp, layout, number_of_frames=frames, frame_length=frame_length)
        assert [_read(fp, frame) for frame in ours] == theirs


def test_the_corpus_has_encapsulated_native_and_multiframe_files() -> None:
    kinds = set()
    for path in CORPUS:
        if (read := _with_pixels(path)) is None:
            continue
        ds, position = read
        with open(path, "rb") as fp:
            layout = pixel_data_read(fp, position, fp.seek(0, 2), little_endian=ds.original_encoding[1] is not False)
        kinds.add(("encapsulated" if layout.encapsulated else "native", _frames_of(ds)[0] > 1))
    assert kinds >= {("encapsulated", False), ("encapsulated", True), ("native", False), ("native", True)}


def _encapsulated(*fragments: bytes, offsets: tuple[int, ...] = ()) -> tuple[io.BytesIO, int]:
    table = b"".join(struct.pack("<I", o) for o in offsets)
    body = b"".join(ITEM + struct.pack("<I", len(f)) + f for f in fragments)
    element = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff" + ITEM + struct.pack("<I", len(table)) + table
    data = b"\x00" * 16 + element + body + DELIMITER + b"\x00" * 4
    return io.BytesIO(data), len(data)


def test_it_finds_fragments_and_the_basic_offset_table() -> None:
    fp, end = _encapsulated(b"ab", b"cdef", b"gh", offsets=(0, 18))
    layout = pixel_data_read(fp, 16, end)
    assert layout.encapsulated and layout.basic_offsets == (0, 18)
    assert [(_read(fp, (f,))) for f in layout.fragments] == [b"ab", b"cdef", b"gh"]
    frames = frame_extents(fp, layout, number_of_frames=2)
    assert [_read(fp, frame) for frame in frames] == [b"abcdef", b"gh"]


def test_without_an_offset_table_jpeg_end_of_image_markers_end_frames() -> None:
    fp, end = _encapsulated(b"\xff\xd8a", b"b\xff\xd9", b"\xff\xd8c\xff\xd9")
    layout = pixel_data_read(fp, 16, end)
    frames = frame_extents(fp, layout, number_of_frames=2)
    assert [_read(fp, frame) for frame in frames] == [b"\xff\xd8ab\xff\xd9", b"\xff\xd8c\xff\xd9"]


def test_native_frames_are_cut_by_frame_length() -> None:
    data = make_instance(pixel_bytes=64)
    with io.BytesIO(data) as fp:
        header = read_header(fp)
        assert isinstance(header.pixel_data, PixelData) and not header.pixel_data.encapsulated
        frames = frame_extents(fp, header.pixel_data, number_of_frames=4, frame_length=16)
        assert [_read(fp, frame) for frame in frames] == [data[-64:][i * 16 : (i + 1) * 16] for i in range(4)]
        with pytest.raises(PixelDataError) as raised:
            frame_extents(fp, header.pixel_data, number_of_frames=5, frame_length=16)
        assert raised.value.problem == "truncated"


@pytest.mark.parametrize("cut", [1, 4, 8, 9, 12, 20, 23])
def test_a_file_cut_inside_encapsulated_pixel_data_is_truncated(cut: int) -> None:
    fp, end = _encapsulated(b"abcd", b"efgh")
    with pytest.raises(PixelDataError) as raised:
        pixel_data_read(fp, 16, end - 4 - cut)
    assert raised.value.problem == "truncated"


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda d: d.replace(DELIMITER, b"\x08\x00\x18\x00"), "among the pixel data items"),
        (lambda d: d.replace(ITEM + b"\x04\x00\x00\x00abcd", ITEM + b"\xff\xff\xff\xffabcd"), "undefined length"),
    ],
)
def test_a_layout_ps35_does_not_allow_is_malformed(tamper: object, message: str) -> None:
    fp, _ = _encapsulated(b"abcd")
    data = tamper(fp.getvalue())  # type: ignore[operator]
    with pytest.raises(PixelDataError, match=message) as raised:
        pixel_data_read(io.BytesIO(data), 16, len(data))
    assert raised.value.problem == "malformed"


def test_fewer_fragments_than_frames_cannot_be_framed() -> None:
    fp, end = _encapsulated(b"ab", b"cd")
    with pytest.raises(PixelDataError, match="cannot hold 3 frames"):
        frame_extents(fp, pixel_data_read(fp, 16, end), number_of_frames=3)
