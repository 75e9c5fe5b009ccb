"""What DICOMweb needs of an instance, captured while it is indexed (PS3.18 §10.4, §10.6).

QIDO-RS matches and returns the image attributes from columns; WADO-RS metadata is the DICOM
JSON built here once (a 200-instance series' metadata then opens no file); frames and bulk data
are read from the byte extents recorded here. BulkDataURIs are stored relative to the server
(``/api/v2/dicomweb/...``): the scheme and host are the request's (core/links.py) and are joined
when the metadata is served.
"""

from __future__ import annotations

import datetime
import json
import struct
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from core.links import dicomweb_path
from dicom.dicom_json import dicom_json
from dicom.dictionary import DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
from dicom.header import InstanceHeader, InvalidInstance, read_header
from dicom.pixel_data import PixelData
from studies.models import VALUE_CHARS, Instance, Series, Study
from studies.objects.store import storage

# Columns written by ``dicomweb_attributes_set`` (bulk updates name them), as DicomwebAttributes names them.
INSTANCE_FIELDS = (
    "rows",
    "columns",
    "samples_per_pixel",
    "bits_allocated",
    "number_of_frames",
    "metadata",
    "pixel_data",
    "bulk_data",
)
SERIES_FIELDS = (
    "performed_procedure_step_start_date",
    "performed_procedure_step_start_time",
    "scheduled_procedure_step_id",
    "requested_procedure_id",
)
_MAX_FRAMES = 2**31 - 1


@dataclass(frozen=True, slots=True)
class DicomwebAttributes:
    """The DICOMweb columns of one instance (INSTANCE_FIELDS) and the QIDO-RS keys it gives its
    series (SERIES_FIELDS) and study (Study ID), built from its header by ``dicomweb_attributes``.
    Built before the indexing transaction: the DICOM JSON is the costliest step of indexing an
    instance, and built under the study's lock it would keep the parts of one study's body from
    being indexed side by side."""

    rows: int | None
    columns: int | None
    samples_per_pixel: int | None
    bits_allocated: int | None
    number_of_frames: int | None  # None: no pixel data
    metadata: str  # the instance's DICOM JSON (PS3.18 Annex F), BulkDataURIs server-relative
    pixel_data: dict[str, Any] | None  # where the pixel data lies (dicom.pixel_data.frame_extents)
    bulk_data: dict[str, list[int]]  # BulkDataURI key -> [offset, length] in the stored file
    performed_procedure_step_start_date: datetime.date | None
    performed_procedure_step_start_time: datetime.time | None
    scheduled_procedure_step_id: str
    requested_procedure_id: str
    study_id: str


def dicomweb_attributes(header: InstanceHeader) -> DicomwebAttributes:
    """What DICOMweb keeps of an instance, from its header (no database). Values that do not
    parse are left empty."""
    ds = header.dataset if header.dataset is not None else Dataset()
    pixel = header.pixel_data
    path = dicomweb_path(header.study_instance_uid, header.series_instance_uid, header.sop_instance_uid)
    pixel_vr = _pixel_vr(pixel)
    built = dicom_json(ds, bulk_uri=lambda bulk: f"{path}/bulkdata/{bulk}", pixel_data_vr=pixel_vr)
    # Every value below is read from the DICOM JSON just built, not converted again by pydicom.
    attributes = built.attributes
    rows, columns = _integer(attributes, _ROWS), _integer(attributes, _COLUMNS)
    samples, bits = _integer(attributes, _SAMPLES_PER_PIXEL), _integer(attributes, _BITS_ALLOCATED)
    # A deflated instance's extents are offsets in its inflated data set, not in the stored file.
    deflated = header.transfer_syntax_uid == DEFLATED_EXPLICIT_VR_LITTLE_ENDIAN
    frame_bits = (rows or 0) * (columns or 0) * (samples or 1) * (bits or 0)
    request = _first_item(attributes, _REQUEST_ATTRIBUTES_SEQUENCE)
    return DicomwebAttributes(
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=bits,
        number_of_frames=(_integer(attributes, _NUMBER_OF_FRAMES) or 1) if pixel is not None else None,
        metadata=json.dumps(attributes, separators=(",", ":"), ensure_ascii=False),
        pixel_data=_layout(ds, pixel, pixel_vr, frame_bits) if pixel is not None else None,
        bulk_data={} if deflated else {key: list(extent) for key, extent in built.bulk_data.items()},
        performed_procedure_step_start_date=_date(attributes, _PPS_START_DATE),
        performed_procedure_step_start_time=_time(attributes, _PPS_START_TIME),
        # Whole, as every indexed value (docs/indexing.md): a cut SH value may be another's. The
        # header bounds the values it reads; these are bounded here the same way.
        scheduled_procedure_step_id=_whole(_text(request, _SCHEDULED_PROCEDURE_STEP_ID)),
        requested_procedure_id=_whole(_text(request, _REQUESTED_PROCEDURE_ID)),
        study_id=_whole(_text(attributes, _STUDY_ID)),
    )


def dicomweb_attributes_set(
    *, instance: Instance, series: Series, study: Study, attributes: DicomwebAttributes
) -> None:
    """Fill the DICOMweb columns of ``instance`` and the QIDO-RS keys of its series and study;
    the caller saves the rows."""
    for name in INSTANCE_FIELDS:
        setattr(instance, name, getattr(attributes, name))
    for name in SERIES_FIELDS:
        setattr(series, name, getattr(attributes, name))
    study.study_id = attributes.study_id


def _whole(value: str) -> str:
    """The value if the index column holds it whole, else "" (unknown rather than wrong)."""
    return value if len(value) <= VALUE_CHARS else ""


def instance_metadata_backfill(*, instance_ids: list[int]) -> dict[int, str]:
    """Build and keep the DICOMweb columns of instances indexed before they existed (read from
    their files, once); their metadata by id. An instance whose file no longer reads is left
    out (its metadata stays empty)."""
    built = {}
    for instance in Instance.objects.filter(pk__in=instance_ids).select_related("series__study"):
        try:
            with storage().open(instance.object_key) as fp:
                header = read_header(fp)
        except (InvalidInstance, OSError):
            continue
        series = instance.series
        dicomweb_attributes_set(
            instance=instance, series=series, study=series.study, attributes=dicomweb_attributes(header)
        )
        instance.save(update_fields=list(INSTANCE_FIELDS))
        built[instance.pk] = instance.metadata
    return built


def _pixel_vr(pixel: PixelData | None) -> str | None:
    """Pixel Data's VR: as the file says in Explicit VR; OW in Implicit VR (PS3.5 §A.1)."""
    if pixel is None:
        return None
    if pixel.vr is not None:
        return pixel.vr
    return "OB" if pixel.encapsulated else "OW"


def _layout(ds: Dataset, pixel: PixelData, vr: str | None, frame_bits: int) -> dict[str, Any]:
    """Where the pixel data lies, as ``dicom.pixel_data.frame_extents`` needs it back."""
    return {
        "tag": pixel.tag,
        "vr": vr,
        "encapsulated": pixel.encapsulated,
        "value": [pixel.value.offset, pixel.value.length],
        "offsets": list(pixel.basic_offsets),
        "fragments": [[f.offset, f.length] for f in pixel.fragments],
        "extended": _extended_offsets(ds),
        "frame_length": (frame_bits + 7) // 8 or None,
    }


def _extended_offsets(ds: Dataset) -> list[list[int]] | None:
    """The Extended Offset Table and its lengths (PS3.3 C.7.6.3.1.8), 64-bit values decoded."""
    if _EXTENDED_OFFSET_TABLE not in ds:
        return None
    try:
        table, lengths = ds.get("ExtendedOffsetTable"), ds.get("ExtendedOffsetTableLengths")
        if not isinstance(table, bytes) or not isinstance(lengths, bytes):
            return None
        order = "<" if ds.original_encoding[1] is not False else ">"
        return [
            list(struct.unpack(f"{order}{len(table) // 8}Q", table[: len(table) // 8 * 8])),
            list(struct.unpack(f"{order}{len(lengths) // 8}Q", lengths[: len(lengths) // 8 * 8])),
        ]
    except Exception:  # noqa: BLE001 - a malformed table is ignored: the fragments still tell
        return None


# DICOM JSON keys (PS3.18 §F.2: the tag as GGGGEEEE) of the values read back.
_ROWS, _COLUMNS, _SAMPLES_PER_PIXEL, _BITS_ALLOCATED = "00280010", "00280011", "00280002", "00280100"
_NUMBER_OF_FRAMES, _STUDY_ID = "00280008", "00200010"
_PPS_START_DATE, _PPS_START_TIME = "00400244", "00400245"
_REQUEST_ATTRIBUTES_SEQUENCE = "00400275"
_SCHEDULED_PROCEDURE_STEP_ID, _REQUESTED_PROCEDURE_ID = "00400009", "00401001"
_EXTENDED_OFFSET_TABLE = 0x7FE00001


def _values(attributes: dict[str, Any] | None, key: str) -> list[Any]:
    """The element's values as DICOM JSON holds them ([] when absent or empty)."""
    element = attributes.get(key) if attributes is not None else None
    values = element.get("Value") if isinstance(element, dict) else None
    return values if isinstance(values, list) else []


def _integer(attributes: dict[str, Any], key: str) -> int | None:
    values = _values(attributes, key)
    number = values[0] if values else None
    valid = isinstance(number, int) and not isinstance(number, bool) and 0 <= number <= _MAX_FRAMES
    return number if valid else None


def _text(attributes: dict[str, Any] | None, key: str) -> str:
    values = _values(attributes, key)
    return "\\".join(str(v) for v in values if v is not None).replace("\x00", "").strip()


def _first_item(attributes: dict[str, Any], key: str) -> dict[str, Any] | None:
    values = _values(attributes, key)
    return values[0] if values and isinstance(values[0], dict) else None


def _date(attributes: dict[str, Any], key: str) -> datetime.date | None:
    text = _text(attributes, key)
    try:
        return datetime.datetime.strptime(text, "%Y%m%d").date() if len(text) == 8 else None
    except ValueError:
        return None


def _time(attributes: dict[str, Any], key: str) -> datetime.time | None:
    text = _text(attributes, key).partition(".")[0]
    formats = {2: "%H", 4: "%H%M", 6: "%H%M%S"}
    try:
        return datetime.datetime.strptime(text, formats[len(text)]).time() if len(text) in formats else None
    except ValueError:
        return None
