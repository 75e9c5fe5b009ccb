"""Synthetic DICOM Part-10 files for tests and benchmarks, and broken variants.

The common elements are encoded by hand (explicit VR little endian, PS3.5 §7.1.2)
because pydicom's writer manages ~1,000 files/s and benchmarks need many more;
anything passed as ``**extra`` is encoded by pydicom. The tests check the result
against ``pydicom.dcmread``.
"""

from __future__ import annotations

import functools
import math
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import pydicom.data
from pydicom import uid as uids
from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element

_CHARSET = "ISO_IR 192"  # UTF-8, so any patient name can be encoded
_LONG_LENGTH_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_UNDEFINED = 0xFFFFFFFF
_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_ITEM_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
_SEQUENCE_DELIMITER = struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
_SOP_CLASSES = {
    "CT": uids.CTImageStorage,
    "MR": uids.MRImageStorage,
    "US": uids.UltrasoundImageStorage,
    "CR": uids.ComputedRadiographyImageStorage,
    "PT": uids.PositronEmissionTomographyImageStorage,
}
_RAMP = bytes(range(256))
_CACHED_PIXEL_BYTES = 1024 * 1024  # bigger ones are built each time rather than kept
_TEST_FILES = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "MR_small_bigendian.dcm")


def make_instance(
    *,
    patient_id: str | None = "P1",
    patient_name: str | None = "Doe^Jane",
    study_uid: str | None = None,
    series_uid: str | None = None,
    sop_uid: str | None = None,
    modality: str | None = "CT",
    series_number: int | None = 1,
    instance_number: int | None = 1,
    pixel_bytes: int = 1024,
    study_date: str | None = "20240102",
    accession: str | None = "ACC1",
    body_part: str | None = "CHEST",
    study_description: str | None = "",
    series_description: str | None = "",
    birth_date: str | None = "19800101",
    sex: str | None = "F",
    encoded: Mapping[int, bytes] | None = None,
    **extra: Any,
) -> bytes:
    """One Part-10 CT-like instance with `pixel_bytes` bytes of 8-bit pixel data.

    ``None`` leaves an element out. ``extra`` maps DICOM keywords to values
    (e.g. ``StudyTime="101500"``) and overrides the parameters; ``None`` there
    removes the element. ``encoded`` maps tags to elements already encoded
    (explicit VR LE), for inputs pydicom will not write. ``pixel_bytes=0``
    writes no pixel data at all.
    """
    sop_uid = uids.generate_uid() if sop_uid is None else sop_uid
    sop_class = _SOP_CLASSES.get(modality or "", uids.SecondaryCaptureImageStorage)
    text = {
        0x00080005: ("CS", _CHARSET),
        0x00080016: ("UI", sop_class),
        0x00080018: ("UI", sop_uid),
        0x00080020: ("DA", study_date),
        0x00080050: ("SH", accession),
        0x00080060: ("CS", modality),
        0x00081030: ("LO", study_description),
        0x0008103E: ("LO", series_description),
        0x00100010: ("PN", patient_name),
        0x00100020: ("LO", patient_id),
        0x00100030: ("DA", birth_date),
        0x00100040: ("CS", sex),
        0x00180015: ("CS", body_part),
        0x0020000D: ("UI", uids.generate_uid() if study_uid is None else study_uid),
        0x0020000E: ("UI", uids.generate_uid() if series_uid is None else series_uid),
        0x00200011: ("IS", None if series_number is None else str(series_number)),
        0x00200013: ("IS", None if instance_number is None else str(instance_number)),
    }
    elements = {tag: _element(tag, vr, value) for tag, (vr, value) in text.items() if value is not None}
    if pixel_bytes > 0:
        elements.update(_image_elements(pixel_bytes))
    for keyword, value in extra.items():
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise ValueError(f"unknown DICOM keyword {keyword!r}")
        elements.pop(tag, None)
        if value is not None:
            elements[tag] = _encoded_by_pydicom(tag, value)
    elements.update(encoded or {})
    body = b"".join(elements[tag] for tag in sorted(elements))
    pixels = _pixels(pixel_bytes) if pixel_bytes > 0 else b""
    return b"".join((_file_meta(sop_class, sop_uid), body, pixels))


def make_study(*, n_series: int = 2, per_series: int = 3, **kw: Any) -> list[bytes]:
    """`n_series` × `per_series` instances of one study (one patient, same date)."""
    study_uid = kw.pop("study_uid", None) or uids.generate_uid()
    return [
        make_instance(
            study_uid=study_uid,
            series_uid=series_uid,
            series_number=series + 1,
            instance_number=number + 1,
            **kw,
        )
        for series in range(n_series)
        for series_uid in [uids.generate_uid()]
        for number in range(per_series)
    ]


def truncated(data: bytes, at: int) -> bytes:
    """The first `at` bytes of `data`, as left by an interrupted upload."""
    return data[:at]


def without_patient_id(**kw: Any) -> bytes:
    return make_instance(patient_id=None, **kw)


def with_bad_uid(
    which: Literal["sop_uid", "study_uid", "series_uid"] = "sop_uid", uid: str = "1..2", **kw: Any
) -> bytes:
    """An instance whose SOP Instance, Study or Series UID is `uid` (default: an empty component)."""
    overrides: dict[str, Any] = {which: uid}
    return make_instance(**overrides, **kw)


def deeply_nested(depth: int, *, undefined_length: bool = True, **kw: Any) -> bytes:
    """An instance with `depth` Content Sequences (0040,A730) nested in one another.

    Encoded by hand: pydicom's writer recurses per level and degrades badly
    past ~250 levels, while tests want thousands.
    """
    leaf = _element(0x0040A160, "UT", "leaf")
    opening: list[bytes] = []
    for level in range(depth):
        if undefined_length:
            opening.append(_header(0x0040A730, "SQ", _UNDEFINED) + _ITEM + struct.pack("<I", _UNDEFINED))
        else:
            inner = len(leaf) + 20 * (depth - level - 1)  # 12-byte SQ header + 8-byte item header
            opening.append(_header(0x0040A730, "SQ", inner + 8) + _ITEM + struct.pack("<I", inner))
    closing = (_ITEM_DELIMITER + _SEQUENCE_DELIMITER) * depth if undefined_length else b""
    return make_instance(encoded={0x0040A730: b"".join((*opening, leaf, closing))}, **kw)


def pydicom_testfiles() -> list[Path]:
    """Real Part-10 files shipped inside pydicom (no network), all indexable."""
    local = {Path(p).name: Path(p) for p in pydicom.data.get_testdata_files()}
    return [local[name] for name in _TEST_FILES if name in local]


def _element(tag: int, vr: str, value: str) -> bytes:
    raw = value.encode("utf-8" if vr in ("PN", "LO", "SH", "LT", "ST", "UT", "UC") else "ascii")
    if len(raw) % 2:
        raw += b"\0" if vr == "UI" else b" "
    return _header(tag, vr, len(raw)) + raw


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in _LONG_LENGTH_VRS:
        return struct.pack("<HH2s2xI", tag >> 16, tag & 0xFFFF, vr.encode(), length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _us(tag: int, value: int) -> bytes:
    return _header(tag, "US", 2) + struct.pack("<H", value)


@functools.lru_cache(maxsize=64)
def _image_elements(pixel_bytes: int) -> dict[int, bytes]:
    frames, rows, columns = _geometry(pixel_bytes)
    elements = {
        0x00280002: _us(0x00280002, 1),
        0x00280004: _element(0x00280004, "CS", "MONOCHROME2"),
        0x00280010: _us(0x00280010, rows),
        0x00280011: _us(0x00280011, columns),
        0x00280100: _us(0x00280100, 8),
        0x00280101: _us(0x00280101, 8),
        0x00280102: _us(0x00280102, 7),
        0x00280103: _us(0x00280103, 0),
    }
    if frames > 1:
        elements[0x00280008] = _element(0x00280008, "IS", str(frames))
    return elements


def _geometry(pixel_bytes: int) -> tuple[int, int, int]:
    """(frames, rows, columns) of 8-bit pixels, each ≤ 65535 where US demands it."""
    for rows in range(min(math.isqrt(pixel_bytes), 65535), 0, -1):
        if pixel_bytes % rows == 0 and pixel_bytes // rows <= 65535:
            return 1, rows, pixel_bytes // rows
    return pixel_bytes, 1, 1


def _pixels(pixel_bytes: int) -> bytes:
    return _cached_pixels(pixel_bytes) if pixel_bytes <= _CACHED_PIXEL_BYTES else _pixel_element(pixel_bytes)


def _pixel_element(pixel_bytes: int) -> bytes:
    """Pixel Data: a ramp, padded with a NUL to even length (PS3.5 §7.1.1)."""
    value = (_RAMP * (pixel_bytes // len(_RAMP) + 1))[:pixel_bytes] + b"\0" * (pixel_bytes % 2)
    return _header(0x7FE00010, "OB", len(value)) + value


_cached_pixels = functools.lru_cache(maxsize=16)(_pixel_element)


def _file_meta(sop_class: str, sop_uid: str) -> bytes:
    meta = b"".join(
        (
            _header(0x00020001, "OB", 2) + b"\0\1",
            _element(0x00020002, "UI", sop_class),
            _element(0x00020003, "UI", sop_uid),
            _element(0x00020010, "UI", uids.ExplicitVRLittleEndian),
            _element(0x00020012, "UI", uids.PYDICOM_IMPLEMENTATION_UID),
        )
    )
    group_length = _header(0x00020000, "UL", 4) + struct.pack("<I", len(meta))
    return b"\0" * 128 + b"DICM" + group_length + meta


def _encoded_by_pydicom(tag: int, value: Any) -> bytes:
    return encoded_element(tag, value)


def encoded_element(tag: int, value: Any, *, charset: str = _CHARSET) -> bytes:
    """One element (Explicit VR LE) as pydicom writes it, text in ``charset``, the (0008,0005)
    value (e.g. "\\ISO 2022 IR 87"): for make_instance's ``encoded``."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_data_element(fp, DataElement(tag, dictionary_VR(tag), value), convert_encodings(charset.split("\\")))
    return fp.getvalue()
