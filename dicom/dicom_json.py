"""The DICOM JSON Model (PS3.18 Annex F) of a data set as the header reader left it.

``dicom_json()`` turns the pydicom ``Dataset`` that ``dicom.header.read_header`` read (its
elements still raw, as read from the file) into the Annex F object ``{"GGGGEEEE": {"vr": ..,
"Value" | "InlineBinary" | "BulkDataURI": ..}}``. Binary values longer than
``bulk_threshold`` bytes are not inlined: the caller's ``bulk_uri(path)`` names them, and their
byte extent in the file is returned beside the object so retrieval reads exactly those bytes.

Values are decoded here rather than through pydicom's element conversion (~30 µs an element,
which would make metadata the slowest step of indexing); anything this module does not decode
itself (sequences, VRs unknown to the dictionary, a UN standing for a known VR) goes through
pydicom's own conversion, so both agree (tests/unit/test_dicom_json.py holds that on every
pydicom test file).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName

from dicom.dictionary import PIXEL_DATA_TAGS, UNDEFINED_LENGTH

BULK_THRESHOLD_BYTES = 1024  # binary values longer than this are bulk data (PS3.18 §F.2.7)

# PS3.18 Table F.2.3-1: how each VR's value is written.
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "LO", "SH", "TM", "UC", "UI"})
_SINGLE_STRING_VRS = frozenset({"LT", "ST", "UT", "UR"})  # never split on "\"
_CHARSET_VRS = frozenset({"LO", "SH", "UC", "LT", "ST", "UT"})  # decoded with (0008,0005)
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
# 64-bit integers are JSON strings in PS3.18 F.2.3.1 when they pass 2^53; pydicom writes numbers.

BulkUri = Callable[[str], str]


@dataclass
class DicomJson:
    """The Annex F object of one instance, and where its bulk data lies in the file: the
    ``bulk_data`` map is bulk path (the one ``bulk_uri`` was given) → (offset, length)."""

    attributes: dict[str, Any]
    bulk_data: dict[str, tuple[int, int]] = field(default_factory=dict)


def dicom_json(
    ds: Dataset,
    *,
    bulk_uri: BulkUri,
    pixel_data_vr: str | None = None,
    bulk_threshold: int = BULK_THRESHOLD_BYTES,
) -> DicomJson:
    """The Annex F object of ``ds`` (PS3.18 §F.2), File Meta elements excluded.

    ``pixel_data_vr`` (OB or OW) adds the Pixel Data element as bulk data: the header read
    stops at it, so it is not in ``ds``; its extent is the caller's (dicom.pixel_data). A bulk
    path is ``GGGGEEEE`` for a top-level element and ``SSSSSSSS/<item>/GGGGEEEE`` inside a
    sequence (items counted from 0). Raises nothing for odd values: a value that does not
    decode is left out (its element written with the VR alone), as an empty one would be.
    """
    builder = _Builder(ds, bulk_uri, bulk_threshold)
    attributes = builder.dataset(ds, "")
    if pixel_data_vr is not None:
        attributes["7FE00010"] = {"vr": pixel_data_vr, "BulkDataURI": bulk_uri("7FE00010")}
    return DicomJson(attributes, builder.bulk_data)


class _Builder:
    """One data set's conversion: its character sets and byte order, and the bulk data found."""

    def __init__(self, ds: Dataset, bulk_uri: BulkUri, threshold: int) -> None:
        charset = ds.original_character_set  # a str when the dataset has no (0008,0005)
        self.encodings = [charset] if isinstance(charset, str) else list(charset)
        self.little = ds.original_encoding[1] is not False
        self.bulk_uri = bulk_uri
        self.threshold = threshold
        self.bulk_data: dict[str, tuple[int, int]] = {}

    def dataset(self, ds: Dataset, prefix: str) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for tag in sorted(ds.keys()):
            if tag.group == 0x0002 or tag in PIXEL_DATA_TAGS:
                continue
            key = f"{tag:08X}"
            result[key] = self.element(ds, tag, prefix + key)
        return result

    def element(self, ds: Dataset, tag: BaseTag, path: str) -> dict[str, Any]:
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and isinstance(raw.value, bytes):
            vr = raw.VR
            if vr is None or (vr == "UN" and not tag.is_private and _known(tag)):
                vr = None  # implicit VR, or UN standing for a known one: pydicom decides
            if vr in _BINARY_VRS and raw.length != UNDEFINED_LENGTH and len(raw.value) > self.threshold:
                self.bulk_data[path] = (raw.value_tell, len(raw.value))
                return {"vr": vr, "BulkDataURI": self.bulk_uri(path)}
            if vr is not None and vr != "SQ":
                return _raw_value(vr, raw.value, self.encodings, self.little)
        elem = ds[tag]  # converted by pydicom
        if elem.VR == "SQ" and elem.value:
            items = [self.dataset(item, f"{path}/{index}/") for index, item in enumerate(elem.value)]
            return {"vr": "SQ", "Value": items}
        return _converted(elem)


def _known(tag: BaseTag) -> bool:
    try:
        dictionary_VR(tag)
    except KeyError:
        return False
    return True


def _raw_value(vr: str, value: bytes, encodings: list[str], little: bool) -> dict[str, Any]:
    """An element from its raw bytes, for the VRs with a fixed JSON form (PS3.18 Table F.2.3-1)."""
    out: dict[str, Any] = {"vr": vr}
    if not value:
        return out
    if vr in _STRING_VRS or vr in _SINGLE_STRING_VRS:
        text = decode_bytes(value, encodings, TEXT_VR_DELIMS) if vr in _CHARSET_VRS else value.decode("latin-1")
        text = _strip(vr, text)
        values: list[Any] = [text] if vr in _SINGLE_STRING_VRS else text.split("\\")
        values = [v or None for v in values]
    elif vr == "PN":
        values = [_person_name(PersonName(part, encodings)) for part in value.rstrip(b" \x00").split(b"\\")]
    elif vr in ("IS", "DS"):
        values = [_number(vr, part) for part in value.decode("latin-1").split("\\")]
    elif vr in _NUMBER_FORMATS or vr == "AT":
        values = _binary_numbers(vr, value, little)
    elif vr in _BINARY_VRS:
        out["InlineBinary"] = base64.b64encode(value).decode("ascii")
        return out
    else:
        return out
    if any(v is not None for v in values):
        out["Value"] = values
    return out


def _binary_numbers(vr: str, value: bytes, little: bool) -> list[Any]:
    order = "<" if little else ">"
    if vr == "AT":  # (group, element) pairs, written GGGGEEEE
        count = len(value) // 4
        pairs = struct.unpack(f"{order}{count * 2}H", value[: count * 4])
        return [f"{pairs[i]:04X}{pairs[i + 1]:04X}" for i in range(0, len(pairs), 2)]
    size = struct.calcsize(_NUMBER_FORMATS[vr])
    count = len(value) // size
    return list(struct.unpack(f"{order}{count}{_NUMBER_FORMATS[vr]}", value[: count * size]))


def _strip(vr: str, value: str) -> str:
    """A string value as pydicom reads it: the whole value's trailing padding (space, or NUL)
    gone, and leading spaces where they are insignificant (PS3.5 Table 6.2-1); each of its
    values is otherwise kept as written."""
    value = value.rstrip(" \x00")
    return value if vr in _SINGLE_STRING_VRS or vr in ("LO", "SH", "UC") else value.lstrip(" ")


def _person_name(name: PersonName) -> dict[str, str] | None:
    groups = {}
    for label, group in (
        ("Alphabetic", name.alphabetic),
        ("Ideographic", name.ideographic),
        ("Phonetic", name.phonetic),
    ):
        if group:
            groups[label] = group
    return groups or None


def _number(vr: str, text: str) -> int | float | None:
    text = text.strip(" \x00")
    if not text:
        return None
    try:
        number = float(text) if vr == "DS" else int(text)
    except ValueError:
        try:
            number = int(float(text))  # pydicom reads "12.0" as IS 12
        except ValueError:
            return None
    if vr == "DS" and number == int(number) and "." not in text and "e" not in text.lower():
        return int(number)
    return number


def _converted(elem: DataElement) -> dict[str, Any]:
    """An element pydicom converted (implicit VRs, UN resolved): from its value."""
    vr = str(elem.VR)
    result: dict[str, Any] = {"vr": vr}
    value = elem.value
    if value is None or (isinstance(value, str | bytes | list | Sequence | MultiValue) and len(value) == 0):
        return result
    if vr in _BINARY_VRS:
        result["InlineBinary"] = base64.b64encode(value if isinstance(value, bytes) else b"").decode("ascii")
        return result
    values = list(value) if isinstance(value, MultiValue | list) else [value]
    encoded = [_converted_value(vr, v) for v in values]
    if any(v is not None for v in encoded):
        result["Value"] = encoded
    return result


def _converted_value(vr: str, value: Any) -> Any:
    if vr == "PN":
        return _person_name(value if isinstance(value, PersonName) else PersonName(str(value)))
    if vr == "AT":
        return f"{int(value):08X}"
    if vr in ("IS", "DS"):
        return _number(vr, str(value)) if value != "" else None
    if vr in _NUMBER_FORMATS:
        return value if isinstance(value, int | float) else None
    return str(value) or None
