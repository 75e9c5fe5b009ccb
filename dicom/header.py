"""Read and validate the header of one stored DICOM instance for indexing.

Implements the checks the indexer (API.md §2) needs before it writes a row: a
PS3.10 Part-10 file, the identifying UIDs of PS3.3 C.12.1 / C.7.2 / C.7.3 valid per
PS3.5 §9.1, and a bounded amount of work whatever the input. The
pixel data is never read (reading stops at it); only its length is checked
against the file size so that a cut-off upload is not indexed as complete.

The File Meta group is read once, at ingest (dicom.part10.Part10Head), and handed in: the data
set is read from where the group ends, in the encoding its Transfer Syntax names, with
pydicom's data set reader. Given no File Meta, ``read_header`` reads it with the same parser.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import io
import re
import struct
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

import pydicom.uid
from pydicom.charset import decode_bytes
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filereader import read_dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.valuerep import TEXT_VR_DELIMS, PersonName

from dicom import dictionary as tags
from dicom.dictionary import (
    DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN,
    PIXEL_DATA_PROVIDER_URL,
    PIXEL_DATA_TAGS,
    ROWS,
    SEQUENCE_DELIMITATION_ITEM,
    UNDEFINED_LENGTH,
)
from dicom.part10 import (
    HEAD_BYTES,
    MAGIC,
    PREAMBLE_BYTES,
    FileMeta,
    FileMetaInvalidUid,
    FileMetaTruncated,
    NotDicom,
    file_meta_read,
)
from dicom.pixel_data import PixelData, PixelDataError, pixel_data_read
from dicom.uid import InvalidUid, uid_parse, uid_warnings

MAX_HEADER_BYTES = 8 * 1024 * 1024
# Deflated Explicit VR Little Endian (PS3.5 §A.5): the whole data set is inflated in memory to be
# read and checked, so it is bounded, in size and in ratio (deflate reaches ~1032:1 on constant
# bytes; real data sets, pixel data included, stay well under 100:1, pydicom's image_dfl.dcm 57:1).
MAX_INFLATED_BYTES = 64 * 1024 * 1024
MAX_INFLATION_RATIO = 200
_RATIO_GRACE = 1024 * 1024  # a tiny file may inflate at any ratio up to this size
_INFLATE_READ = 64 * 1024
MAX_SEQUENCE_DEPTH = 16
# Values are kept whole, never cut (a cut Accession Number or Patient ID becomes another
# record's). A value longer than its VR allows (PS3.5 Table 6.2-1) is indexed with a warning;
# one longer than this bound, which the index columns (Patient ID's in the record log and the
# audit log too) hold, is refused (`value-too-long`).
MAX_VALUE_CHARS = 512
# Maximum characters of one value (of one component group for PN), PS3.5 Table 6.2-1.
_VR_MAX_CHARS = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "ST": 1024, "LT": 10240}

Code = Literal[
    "not-dicom",
    "truncated",
    "malformed",
    "missing-uid",
    "invalid-uid",
    "value-too-long",
    "too-deep",
    "too-large-header",
    "unsupported-transfer-syntax",
    "inflation-ratio",
]


class InvalidInstance(ValueError):
    """The file cannot be indexed; ``code`` is stable and machine-friendly. ``uids`` holds the
    (SOP Instance, Study, Series) UIDs that were readable when it was refused ("" where not),
    so every rejection names its instance."""

    def __init__(self, code: Code, message: str, uids: tuple[str, str, str] = ("", "", "")) -> None:
        super().__init__(message)
        self.code: Code = code
        self.message = message
        self.uids = uids

    def __reduce__(self) -> tuple[type[InvalidInstance], tuple[Code, str, tuple[str, str, str]]]:
        # Celery pickles exceptions; the default would call cls(message) only.
        return (InvalidInstance, (self.code, self.message, self.uids))


@dataclass(frozen=True, slots=True)
class ItemWarning:
    """Something non-conformant an instance was indexed with anyway (docs/indexing.md lists
    the codes): ``code`` stable, ``message`` for people."""

    code: str
    message: str


@dataclass(frozen=True)
class InstanceHeader:
    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient_id: str
    patient_name: str
    patient_birth_date: datetime.date | None
    patient_sex: str
    study_date: datetime.date | None
    study_time: datetime.time | None
    accession_number: str
    study_description: str
    referring_physician: str
    modality: str
    series_number: int | None
    series_description: str
    body_part: str
    instance_number: int | None
    # (0008,0201) Timezone Offset From UTC, which qualifies every DA/TM of the data set
    # (PS3.3 C.12.1.1.8), as "+hh:mm"; "" when absent or not a valid offset.
    timezone_offset: str = ""
    # Where the pixel data lies in the file, when it has any: a fact of the file, not a value of the
    # data set, so left out of comparisons (tests compare headers with pydicom's reading).
    pixel_data: PixelData | None = field(default=None, compare=False)
    # The data set as read (up to its pixel data, values still raw): DICOMweb builds its
    # metadata from it (dicom/dicom_json.py). Not a value to compare either.
    dataset: Dataset | None = field(default=None, compare=False, repr=False)
    # What was accepted though non-conformant (a UID's leading zero, a value too long for its VR).
    warnings: tuple[ItemWarning, ...] = field(default=(), compare=False)


# DA, plus the ACR-NEMA "YYYY.MM.DD" form PS3.5 still asks readers to accept.
_DA = re.compile(r"(\d{4})(\.?)(\d{2})\2(\d{2})", re.ASCII)
# TM "HH[MM[SS[.F{1,6}]]]", plus the ACR-NEMA "HH:MM:SS" form.
_TM = re.compile(r"(\d{2})(?:(:?)(\d{2})(?:\2(\d{2})(?:\.(\d{1,6}))?)?)?", re.ASCII)

_OFFSET = re.compile(r"([+-])(\d{2})(\d{2})", re.ASCII)

# IS; pydicom also reads "12.0" as 12.
_IS = re.compile(r"([+-]?\d{1,12})(?:\.0*)?", re.ASCII)

_TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC"})
_ASCII_VRS = frozenset({"CS", "DA", "TM", "IS", "DS", "UI", "AS", "DT"})
_NO_LIMIT = 2**63


def read_header(fp: BinaryIO, meta: FileMeta | None = None) -> InstanceHeader:
    """Parse and validate the header of the Part-10 file `fp` (from its position).

    ``meta`` is the file's File Meta group as ingest read it (offsets from `fp`'s position);
    None reads it here. Raises InvalidInstance for anything that must not be indexed; OSError
    from `fp` itself propagates, as it says nothing about the file's content.
    """
    start = fp.tell()
    end = fp.seek(0, 2)
    fp.seek(start)
    if end - start < HEAD_BYTES or fp.read(HEAD_BYTES)[PREAMBLE_BYTES:] != MAGIC:
        raise InvalidInstance("not-dicom", "no DICOM preamble and 'DICM' prefix (PS3.10 §7.1)")
    if meta is None:
        fp.seek(start)
        meta = _file_meta(fp)
    deflated = meta.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    if deflated:
        # Read from the inflated data set instead (pydicom would inflate the rest of the file in
        # one call, unbounded: a zip bomb); its offsets are then the inflated stream's.
        fp = _inflated(fp, start + meta.end, end)
        start, end, meta = 0, len(fp.getbuffer()), dataclasses.replace(meta, end=0)
    if start + meta.end >= end:
        # pydicom would read an empty data set without complaint.
        raise InvalidInstance("truncated", "file ends inside or right after the file meta group")
    reader = _BoundedReader(fp, start + MAX_HEADER_BYTES)
    reader.seek(start + meta.end)
    try:
        ds, pixel_data = _data_set(reader, meta, end)
    except InvalidInstance:
        raise
    except RecursionError as exc:  # undefined-length sequences nested past the stack
        raise InvalidInstance("too-deep", "sequences nested too deeply") from exc
    except Exception as exc:  # pydicom raises many types on hostile input
        if reader.io_error and not reader.exceeded:
            raise  # the disk's failure, not the file's
        raise _refusal(exc, reader) from exc
    # Where the pixel data lies in the *stored* (deflated) file is not known: none is claimed.
    return _header(ds, meta, None if deflated else pixel_data)


def _inflated(fp: BinaryIO, offset: int, end: int) -> io.BytesIO:
    """The data set of a Deflated Explicit VR Little Endian file (PS3.5 §A.5: raw RFC 1951
    deflate from ``offset`` to ``end``), inflated within hard bounds: at most MAX_INFLATED_BYTES,
    and past the first MiB at most MAX_INFLATION_RATIO times the compressed bytes consumed.
    Raises InvalidInstance: `too-large-header` / `inflation-ratio` past a bound, `truncated` if
    the deflate stream does not end, `malformed` if it is not one."""
    fp.seek(offset)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out, position, pending = bytearray(), offset, b""
    try:
        while not inflater.eof:
            if not pending:
                pending = fp.read(min(_INFLATE_READ, end - position))
                if not pending:
                    raise InvalidInstance("truncated", "the deflated data set ends early")
                position += len(pending)
            out += inflater.decompress(pending, MAX_INFLATED_BYTES + 1 - len(out))
            pending = inflater.unconsumed_tail
            if len(out) > MAX_INFLATED_BYTES:
                raise InvalidInstance("too-large-header", f"inflated data set over {MAX_INFLATED_BYTES} bytes")
            used = position - offset - len(pending)
            if len(out) > _RATIO_GRACE and len(out) > MAX_INFLATION_RATIO * used:
                raise InvalidInstance("inflation-ratio", f"deflated data inflates over {MAX_INFLATION_RATIO}:1")
    except zlib.error as exc:
        raise InvalidInstance("malformed", f"the deflated data set does not inflate: {exc}") from None
    return io.BytesIO(out)


def _data_set(reader: _BoundedReader, meta: FileMeta, end: int) -> tuple[Dataset, PixelData | None]:
    """The data set up to its pixel data, read in its transfer syntax's encoding and checked
    whole: not cut short, sequences not nested too deep; and where its pixel data lies."""
    implicit, little = _encoding(meta.transfer_syntax_uid)
    ds = read_dataset(reader, implicit, little, stop_when=_at_pixel_data)  # type: ignore[arg-type]
    stop, short = reader.tell(), reader.short_read
    # The checks below peek past the header, ≤ 12 bytes at a time.
    reader.limit, reader.short_read = _NO_LIMIT, False
    pixel_data = _check_complete(ds, reader, stop, end, short)
    _check_depth(ds)
    return ds, pixel_data


def _refusal(exc: Exception, reader: _BoundedReader) -> InvalidInstance:
    """What a parse failure means for the file, from what the reader saw happen."""
    if reader.exceeded:
        return InvalidInstance("too-large-header", f"header larger than {MAX_HEADER_BYTES} bytes")
    if reader.short_read:
        return InvalidInstance("truncated", "file ends inside the header")
    if isinstance(exc, InvalidDicomError):
        return InvalidInstance("not-dicom", str(exc))
    return InvalidInstance("malformed", f"cannot parse header: {exc}")


class _BoundedReader:
    """The file as pydicom sees it: refuses to read past `limit`, notes short reads."""

    def __init__(self, fp: BinaryIO, limit: int) -> None:
        self._fp = fp
        self._position = fp.tell()
        self.limit = limit
        self.exceeded = False
        self.short_read = False
        self.io_error = False

    def read(self, size: int = -1, /) -> bytes:
        if size < 0 or self._position + size > self.limit:
            self.exceeded = True  # recorded: pydicom re-wraps some exceptions as OSError
            raise OverflowError("header size limit reached")
        try:
            data = self._fp.read(size)
        except OSError:
            self.io_error = True
            raise
        self._position += len(data)
        if len(data) < size:
            self.short_read = True
        return data

    def seek(self, offset: int, whence: int = 0, /) -> int:
        self._position = self._fp.seek(offset, whence)
        return self._position

    def tell(self) -> int:
        return self._position


def _file_meta(fp: BinaryIO) -> FileMeta:
    """The File Meta group of a file stored before ingest kept it, by ingest's own parser."""
    try:
        return file_meta_read(fp)
    except FileMetaTruncated as exc:
        raise InvalidInstance("truncated", "file ends inside the file meta group") from exc
    except FileMetaInvalidUid as exc:
        raise InvalidInstance("invalid-uid", f"{exc} (PS3.5 §9.1)") from exc
    except NotDicom as exc:
        raise InvalidInstance("not-dicom", str(exc)) from exc


def _encoding(transfer_syntax_uid: str) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the data set, decided as pydicom's file reader does
    (PS3.5 §10, Annex A): a transfer syntax it does not know is Explicit VR Little Endian."""
    syntax = pydicom.uid.UID(transfer_syntax_uid)
    if syntax in pydicom.uid.PrivateTransferSyntaxes:
        syntax = pydicom.uid.PrivateTransferSyntaxes[pydicom.uid.PrivateTransferSyntaxes.index(syntax)]
    if syntax.is_transfer_syntax or syntax in pydicom.uid.PrivateTransferSyntaxes:
        return syntax.is_implicit_VR, syntax.is_little_endian
    return False, True


def _at_pixel_data(tag: BaseTag, vr: str | None, length: int) -> bool:
    return tag in PIXEL_DATA_TAGS


def _check_complete(ds: Dataset, fp: _BoundedReader, stop: int, end: int, short: bool) -> PixelData | None:
    """Refuse a file that ends early, which pydicom reads without complaint; return where its
    pixel data lies (None without pixel data).

    pydicom stops at the Pixel Data tag or at end of file, and quietly accepts a
    value or tag cut short there. So: the last top-level element must end exactly
    where parsing stopped, and the pixel data must fit in the file, item by item when
    encapsulated (dicom.pixel_data).
    """
    _, little = ds.original_encoding
    order = "<" if little is not False else ">"
    elements = list(ds.values())  # raw, unlike ds.elements() which converts
    if elements:
        last = max(elements, key=_file_position)
        if isinstance(last, RawDataElement) and last.length != UNDEFINED_LENGTH:
            complete = last.value_tell + last.length == stop
        elif isinstance(last, RawDataElement) or last.is_undefined_length:
            # An undefined-length value ends with a Sequence Delimitation Item.
            fp.seek(stop - 8)
            complete = fp.read(8) == struct.pack(order + "HHI", *SEQUENCE_DELIMITATION_ITEM, 0)
        else:
            # Only the Specific Character Set is converted while reading: a dataset
            # ending with it has nothing else, whatever its length.
            complete = False
        if not complete:
            raise InvalidInstance(
                "truncated" if short or stop >= end else "malformed",
                "the last header element does not end where the header ends",
            )
    if stop >= end and ROWS in ds and PIXEL_DATA_PROVIDER_URL not in ds:
        raise InvalidInstance("truncated", "file ends before the pixel data of an image")
    if stop >= end:
        return None
    try:
        # It also refuses a stop at anything but pixel data: the header parse ended early.
        return pixel_data_read(fp, stop, end, little_endian=little is not False)  # type: ignore[arg-type]  # reads like a file
    except PixelDataError as exc:
        raise InvalidInstance(exc.problem, str(exc)) from exc


def _file_position(elem: DataElement | RawDataElement) -> int:
    # A parsed undefined-length sequence is a DataElement, with file_tell.
    return elem.value_tell if isinstance(elem, RawDataElement) else (elem.file_tell or 0)


def _check_depth(ds: Dataset) -> None:
    """Refuse sequences nested deeper than MAX_SEQUENCE_DEPTH, one level at a time."""
    pending: list[tuple[Dataset, int]] = [(ds, 0)]
    while pending:
        dataset, depth = pending.pop()
        for raw in list(dataset.values()):  # a copy: converting replaces entries
            if not _may_be_sequence(raw.tag, raw.VR):
                continue
            # Converting a defined-length sequence parses exactly one more level.
            value = dataset[raw.tag].value
            if isinstance(value, Sequence) and len(value) > 0:
                if depth + 1 > MAX_SEQUENCE_DEPTH:
                    raise InvalidInstance("too-deep", f"sequences nested deeper than {MAX_SEQUENCE_DEPTH}")
                pending.extend((item, depth + 1) for item in value)


def _may_be_sequence(tag: BaseTag, vr: str | None) -> bool:
    if vr == "SQ":
        return True
    if vr is not None and vr != "UN":
        return False
    if tag.is_private:
        return True  # pydicom decides from its private dictionary
    try:
        return dictionary_VR(tag) == "SQ"
    except KeyError:
        return False


def _header(ds: Dataset, meta: FileMeta, pixel_data: PixelData | None) -> InstanceHeader:
    try:
        return _header_values(ds, meta, pixel_data)
    except InvalidInstance as exc:
        tags_ = (tags.SOP_INSTANCE_UID, tags.STUDY_INSTANCE_UID, tags.SERIES_INSTANCE_UID)
        sop, study, series = (_readable_uid(ds, tag) for tag in tags_)
        raise InvalidInstance(exc.code, exc.message, (sop, study, series)) from None


def _header_values(ds: Dataset, meta: FileMeta, pixel_data: PixelData | None) -> InstanceHeader:
    charset = ds.original_character_set  # a str when the dataset has no (0008,0005)
    notes: list[ItemWarning] = []
    text = functools.partial(_text, ds, encodings=[charset] if isinstance(charset, str) else list(charset), notes=notes)
    uid = functools.partial(_uid, ds, notes=notes)
    # Patient ID is Type 2 (PS3.3 C.7.1.1): empty is valid, and indexed as a patient of its own.
    if ds.get_item(tags.PATIENT_ID) is None:
        notes.append(ItemWarning("patient-id-absent", "Patient ID (0010,0020), Type 2, is absent"))
    patient_id = text(tags.PATIENT_ID)
    sex = text(tags.PATIENT_SEX).upper()
    return InstanceHeader(
        sop_instance_uid=uid(tags.SOP_INSTANCE_UID, "SOP Instance UID (0008,0018)"),
        sop_class_uid=uid(tags.SOP_CLASS_UID, "SOP Class UID (0008,0016)"),
        transfer_syntax_uid=meta.transfer_syntax_uid,  # checked by the same UID rule in dicom.part10
        study_instance_uid=uid(tags.STUDY_INSTANCE_UID, "Study Instance UID (0020,000D)"),
        series_instance_uid=uid(tags.SERIES_INSTANCE_UID, "Series Instance UID (0020,000E)"),
        patient_id=patient_id,
        patient_name=text(tags.PATIENT_NAME),
        patient_birth_date=_date(text(tags.PATIENT_BIRTH_DATE)),
        patient_sex=sex if sex in ("M", "F", "O") else "",
        study_date=_date(text(tags.STUDY_DATE)),
        study_time=_time(text(tags.STUDY_TIME)),
        accession_number=text(tags.ACCESSION_NUMBER),
        study_description=text(tags.STUDY_DESCRIPTION),
        referring_physician=text(tags.REFERRING_PHYSICIAN_NAME),
        modality=text(tags.MODALITY),
        series_number=_integer(text(tags.SERIES_NUMBER)),
        series_description=text(tags.SERIES_DESCRIPTION),
        body_part=text(tags.BODY_PART_EXAMINED),
        instance_number=_integer(text(tags.INSTANCE_NUMBER)),
        timezone_offset=_offset(text(tags.TIMEZONE_OFFSET_FROM_UTC), notes),
        pixel_data=pixel_data,
        dataset=ds,
        warnings=tuple(notes),
    )


def _string(ds: Dataset, tag: int, encodings: list[str]) -> str | None:
    """The element's value decoded as pydicom decodes it, multiple values joined by "\\".

    Decoded here rather than through ``ds[tag]``: pydicom's conversion costs
    ~30 µs an element and would be half of the time per header.
    """
    elem: DataElement | RawDataElement | None = ds.get_item(tag)
    if elem is None:
        return None
    if isinstance(elem, DataElement):  # already converted (e.g. undefined length)
        value = elem.value
        if isinstance(value, MultiValue):
            return "\\".join(map(str, value))
        return str(value) if isinstance(value, (str, PersonName, int, float)) else None
    raw, vr = elem.value, elem.VR
    if vr is None or vr == "UN":  # implicit VR, or UN standing for the dictionary's VR
        vr = dictionary_VR(tag)
    if not isinstance(raw, bytes):
        return None
    if vr == "PN":
        return str(PersonName(raw, encodings))
    if vr in _TEXT_VRS:
        return decode_bytes(raw, encodings, TEXT_VR_DELIMS)
    if vr in _ASCII_VRS:
        return raw.decode("latin-1")  # PS3.5 §6.1.2: default repertoire only
    return None  # a binary VR where text belongs


def _text(ds: Dataset, tag: int, *, encodings: list[str], notes: list[ItemWarning]) -> str:
    # NUL cannot be stored in PostgreSQL text; spaces are DICOM padding.
    text = (_string(ds, tag, encodings) or "").replace("\x00", "").strip()
    if len(text) > MAX_VALUE_CHARS:
        raise InvalidInstance("value-too-long", f"{_name(tag)} is longer than {MAX_VALUE_CHARS} characters")
    vr = _dictionary_vr(tag)
    limit = _VR_MAX_CHARS.get(vr)
    values = text.split("=") if vr == "PN" else text.split("\\")  # PN: per component group
    if limit is not None and any(len(value.strip()) > limit for value in values):
        notes.append(ItemWarning("value-too-long", f"{_name(tag)} is longer than {vr} allows ({limit}); kept whole"))
    return text


def _dictionary_vr(tag: int) -> str:
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _name(tag: int) -> str:
    """The attribute as people read it: keyword and (gggg,eeee)."""
    return f"{keyword_for_tag(tag) or 'Attribute'} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def _uid(ds: Dataset, tag: int, name: str, *, notes: list[ItemWarning]) -> str:
    """The element's UID by the one UID rule (dicom/uid.py): padding stripped, a leading-zero
    component or odd padding accepted with a warning, anything else PS3.5 §9.1 forbids refused."""
    try:
        uid = uid_parse(_string(ds, tag, []) or "")
    except InvalidUid as exc:
        if exc.reason == "empty":
            raise InvalidInstance("missing-uid", f"{name} is missing") from None
        raise InvalidInstance("invalid-uid", f"{name} is not a valid UID (PS3.5 §9.1)") from None
    notes.extend(ItemWarning(code, f"{name} {message}") for code, message in uid_warnings(uid))
    return uid.value


def _readable_uid(ds: Dataset, tag: int) -> str:
    """The UID the element holds if the UID rule accepts it, else "" (to name a rejection)."""
    try:
        return uid_parse(_string(ds, tag, []) or "").value
    except (InvalidUid, KeyError, ValueError):
        return ""


def _date(value: str) -> datetime.date | None:
    match = _DA.fullmatch(value)
    if match is None:
        return None
    try:
        return datetime.date(int(match[1]), int(match[3]), int(match[4]))
    except ValueError:
        return None


def _time(value: str) -> datetime.time | None:
    match = _TM.fullmatch(value)
    if match is None:
        return None
    hour, _, minute, second, fraction = match.groups()
    try:
        return datetime.time(
            int(hour),
            int(minute or 0),
            min(int(second or 0), 59),  # PS3.5 allows a leap second, 60
            int((fraction or "").ljust(6, "0")),
        )
    except ValueError:
        return None


def _offset(value: str, notes: list[ItemWarning]) -> str:
    """(0008,0201) "&ZZXX" (PS3.3 C.12.1.1.8: "+" or "-", hours, minutes; -12:00 to +14:00) as
    "+hh:mm"; "" when absent, and with an `invalid-value` warning when not an offset."""
    match = _OFFSET.fullmatch(value)
    minutes = 0 if match is None else (60 * int(match[2]) + int(match[3])) * (-1 if match[1] == "-" else 1)
    if match is None or int(match[3]) > 59 or not -12 * 60 <= minutes <= 14 * 60:
        if value:
            notes.append(ItemWarning("invalid-value", f"Timezone Offset From UTC (0008,0201) {value!r} ignored"))
        return ""
    return f"{match[1]}{match[2]}:{match[3]}"


def _integer(value: str) -> int | None:
    match = _IS.fullmatch(value)
    if match is None:
        return None
    number = int(match[1])
    return number if -(2**31) <= number < 2**31 else None
