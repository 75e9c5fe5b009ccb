"""dicom.header: what the indexer reads from a stored instance, and what it refuses."""

from __future__ import annotations

import dataclasses
import io
import pickle
import struct
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.multival import MultiValue
from pydicom.valuerep import DA, TM

from dicom.header import (
    MAX_HEADER_BYTES,
    MAX_INFLATED_BYTES,
    MAX_SEQUENCE_DEPTH,
    InstanceHeader,
    InvalidInstance,
    read_header,
)
from dicom.part10 import FileMeta, Part10Head
from tests.support.dicomfactory import (
    deeply_nested,
    make_instance,
    make_study,
    pydicom_testfiles,
    truncated,
    with_bad_uid,
    without_patient_id,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns on bad values


def read(data: bytes) -> InstanceHeader:
    return read_header(io.BytesIO(data))


def code_of(data: bytes) -> str:
    with pytest.raises(InvalidInstance) as caught:
        read(data)
    return caught.value.code


def as_pydicom_reads_it(data: bytes) -> InstanceHeader:
    """The header built from a full pydicom.dcmread, independently of dicom.header."""
    ds = pydicom.dcmread(io.BytesIO(data))

    def text(keyword: str) -> str:
        value = ds.get(keyword)
        if isinstance(value, MultiValue):
            return "\\".join(map(str, value))
        return "" if value is None else str(value).strip()

    def date(keyword: str) -> Any:
        return DA(text(keyword)) if text(keyword) else None

    def number(keyword: str) -> int | None:
        return int(ds[keyword].value) if text(keyword) else None

    return InstanceHeader(
        sop_instance_uid=text("SOPInstanceUID"),
        sop_class_uid=text("SOPClassUID"),
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID),
        study_instance_uid=text("StudyInstanceUID"),
        series_instance_uid=text("SeriesInstanceUID"),
        patient_id=text("PatientID"),
        patient_name=text("PatientName"),
        patient_birth_date=date("PatientBirthDate"),
        patient_sex=text("PatientSex") if text("PatientSex") in ("M", "F", "O") else "",
        study_date=date("StudyDate"),
        study_time=TM(text("StudyTime")) if text("StudyTime") else None,
        accession_number=text("AccessionNumber"),
        study_description=text("StudyDescription"),
        referring_physician=text("ReferringPhysicianName"),
        modality=text("Modality"),
        series_number=number("SeriesNumber"),
        series_description=text("SeriesDescription"),
        body_part=text("BodyPartExamined"),
        instance_number=number("InstanceNumber"),
        timezone_offset=offset(text("TimezoneOffsetFromUTC")),
    )


def offset(value: str) -> str:
    """(0008,0201) as "+hh:mm", read independently: pydicom keeps the string."""
    if len(value) != 5 or value[0] not in "+-" or not value[1:].isdigit():
        return ""
    return f"{value[:3]}:{value[3:]}" if int(value[1:3]) <= 14 and int(value[3:]) <= 59 else ""


class CountingReader(io.BytesIO):
    """Counts the bytes handed out, and those from `watch_from` on (the pixel data)."""

    def __init__(self, data: bytes, watch_from: int | None = None) -> None:
        super().__init__(data)
        self.watch_from = len(data) if watch_from is None else watch_from
        self.bytes_read = self.watched_bytes_read = 0

    def read(self, size: int | None = -1, /) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.bytes_read += len(data)
        self.watched_bytes_read += max(0, start + len(data) - max(start, self.watch_from))
        return data


# --- what a valid instance yields --------------------------------------------------------


def test_it_reads_the_factory_instance_as_pydicom_does() -> None:
    data = make_instance(
        patient_id="P-42",
        patient_name="Doe^Jane^^Dr",
        study_description="CT Thorax",
        series_description="Axial 1mm",
        series_number=3,
        instance_number=17,
        StudyTime="101530.25",
        ReferringPhysicianName="House^Gregory",
    )

    header = read(data)

    assert header == as_pydicom_reads_it(data)
    assert header.patient_id == "P-42"
    assert header.patient_name == "Doe^Jane^^Dr"
    assert header.patient_birth_date is not None and header.patient_birth_date.isoformat() == "1980-01-01"
    assert header.study_time is not None and header.study_time.isoformat() == "10:15:30.250000"
    assert (header.series_number, header.instance_number) == (3, 17)
    assert (header.modality, header.body_part, header.patient_sex) == ("CT", "CHEST", "F")
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1"
    assert header.sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"


@pytest.mark.parametrize("path", pydicom_testfiles(), ids=lambda path: path.name)
def test_it_reads_pydicom_test_files_as_pydicom_does(path: Path) -> None:
    data = path.read_bytes()

    assert read(data) == as_pydicom_reads_it(data)


def test_it_finds_pydicom_test_files_offline() -> None:
    names = {path.name for path in pydicom_testfiles()}

    assert {"CT_small.dcm", "MR_small.dcm", "rtplan.dcm"} <= names
    assert all(path.read_bytes()[128:132] == b"DICM" for path in pydicom_testfiles())


def test_it_reads_a_file_on_disk_from_its_current_position(tmp_path: Path) -> None:
    data = make_instance(patient_id="DISK")
    path = tmp_path / "instance.dcm"
    path.write_bytes(b"junk before the instance" + data)

    with path.open("rb") as fp:
        fp.seek(len(b"junk before the instance"))
        header = read_header(fp)

    assert header.patient_id == "DISK"


def test_it_decodes_non_ascii_names() -> None:
    data = make_instance(patient_name="Müller^Zoë", study_description="Schädel nativ", patient_id="Ä1")

    header = read(data)

    assert (header.patient_name, header.study_description, header.patient_id) == ("Müller^Zoë", "Schädel nativ", "Ä1")
    assert header == as_pydicom_reads_it(data)


def test_it_reads_an_instance_without_pixel_data() -> None:
    header = read(make_instance(pixel_bytes=0, modality="SR"))

    assert header.modality == "SR"


@pytest.mark.parametrize(
    ("study_date", "study_time", "date", "time"),
    [
        ("20240229", "101530.123456", "2024-02-29", "10:15:30.123456"),
        ("2024.01.02", "10:15:30", "2024-01-02", "10:15:30"),  # ACR-NEMA forms
        ("20240102", "1015", "2024-01-02", "10:15:00"),
        ("20240102", "10", "2024-01-02", "10:00:00"),
        ("20240102", "235960", "2024-01-02", "23:59:59"),  # leap second
    ],
)
def test_it_parses_dicom_dates_and_times(study_date: str, study_time: str, date: str, time: str) -> None:
    header = read(make_instance(study_date=study_date, StudyTime=study_time))

    assert header.study_date is not None and header.study_date.isoformat() == date
    assert header.study_time is not None and header.study_time.isoformat() == time


def test_it_turns_malformed_values_into_none_or_empty() -> None:
    data = make_instance(
        study_date="20241301",
        birth_date="19800231",
        StudyTime="256000",
        sex="X",
        SeriesNumber="1.5",
        InstanceNumber="99999999999",
    )

    header = read(data)

    assert (header.study_date, header.patient_birth_date, header.study_time) == (None, None, None)
    assert (header.series_number, header.instance_number, header.patient_sex) == (None, None, "")


def test_it_treats_absent_optional_elements_as_empty() -> None:
    data = make_instance(
        patient_name=None, study_date=None, birth_date=None, sex=None, accession=None, series_number=None
    )

    header = read(data)

    assert (header.patient_name, header.accession_number, header.patient_sex) == ("", "", "")
    assert (header.study_date, header.patient_birth_date, header.series_number) == (None, None, None)


def test_it_keeps_text_whole_and_drops_nul() -> None:
    header = read(make_instance(study_description="A" * 300, series_description="a\0b"))

    assert header.study_description == "A" * 300  # never cut: a cut value may be another's
    assert header.series_description == "ab"


def test_it_reads_sequences_up_to_the_depth_limit() -> None:
    for undefined_length in (True, False):
        assert read(deeply_nested(MAX_SEQUENCE_DEPTH, undefined_length=undefined_length)).patient_id == "P1"


def test_it_reads_a_header_just_under_the_size_limit() -> None:
    data = make_instance(ICCProfile=b"\0" * (MAX_HEADER_BYTES - 4096))

    assert read(data).patient_id == "P1"


def ingest_meta(data: bytes) -> FileMeta:
    """The File Meta group as ingest reads it (and keeps on the upload item)."""
    head = Part10Head()
    head.feed(data)
    head.finish()
    assert head.meta is not None
    return head.meta


class RangeReader(io.BytesIO):
    """Remembers which byte ranges were read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.ranges: list[tuple[int, int]] = []

    def read(self, size: int | None = -1, /) -> bytes:
        start = self.tell()
        data = super().read(size)
        self.ranges.append((start, start + len(data)))
        return data


def test_it_reads_the_data_set_after_the_file_meta_ingest_kept_without_reading_the_group() -> None:
    data = make_instance(patient_id="ONCE", StudyTime="101530")
    meta = ingest_meta(data)
    fp = RangeReader(data)

    header = read_header(fp, meta)

    assert header == read(data) == as_pydicom_reads_it(data)
    assert not [r for r in fp.ranges if r[0] < meta.end and r[1] > 132]  # the group's bytes


@pytest.mark.parametrize("path", pydicom_testfiles(), ids=lambda path: path.name)
def test_it_reads_pydicom_test_files_with_the_file_meta_ingest_kept(path: Path) -> None:
    data = path.read_bytes()

    assert read_header(io.BytesIO(data), ingest_meta(data)) == as_pydicom_reads_it(data)


def test_it_refuses_a_file_that_ends_where_its_file_meta_ends() -> None:
    data = make_instance()
    meta = ingest_meta(data)

    with pytest.raises(InvalidInstance) as caught:
        read_header(io.BytesIO(data[: meta.end]), meta)
    assert caught.value.code == "truncated"


# --- the pixel data stays on disk ----------------------------------------------------------


def test_it_does_not_read_the_pixel_data() -> None:
    data = make_instance(pixel_bytes=50 * 1024 * 1024)
    fp = CountingReader(data, watch_from=data.index(struct.pack("<HH", 0x7FE0, 0x0010)))

    tracemalloc.start()
    try:
        header = read_header(fp)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert header.patient_id == "P1"
    assert fp.bytes_read < 4096  # the header is ~800 bytes; the pixel data 50 MiB
    assert fp.watched_bytes_read <= 2 * 12  # the Pixel Data element's header, read twice
    assert peak < 1024 * 1024


def test_it_checks_encapsulated_pixel_data_without_reading_it() -> None:
    data = next(path for path in pydicom_testfiles() if path.name == "JPEG2000.dcm").read_bytes()
    pixel_data = data.index(struct.pack("<HH", 0x7FE0, 0x0010) + b"OB")
    fp = CountingReader(data, watch_from=pixel_data + 12)

    read_header(fp)

    assert fp.watched_bytes_read <= 3 * 8  # item headers: offset table, one fragment, delimiter


# --- what is refused, and why ----------------------------------------------------------------


@pytest.mark.parametrize(
    "data", [b"", b"hello", b"\0" * 1000, b"\0" * 128 + b"DICX" + b"\0" * 100], ids=["empty", "text", "zeros", "magic"]
)
def test_it_refuses_what_is_not_dicom(data: bytes) -> None:
    assert code_of(data) == "not-dicom"


def test_it_refuses_truncated_files_wherever_they_are_cut() -> None:
    data = make_instance(pixel_bytes=4096)
    pixel_data = data.index(struct.pack("<HH", 0x7FE0, 0x0010))
    patient_id = data.index(struct.pack("<HH", 0x0010, 0x0020))
    cuts = {
        "in the file meta": 200,
        "after the file meta": 132 + 12 + struct.unpack_from("<I", data, 140)[0],
        "inside an element": patient_id + 9,
        "inside a tag": patient_id + 3,
        "just before the pixel data": pixel_data,
        "inside the pixel data header": pixel_data + 7,
        "inside the pixel data": pixel_data + 100,
        "one byte short": len(data) - 1,
    }

    codes = {where: code_of(truncated(data, at)) for where, at in cuts.items()}

    assert codes == dict.fromkeys(cuts, "truncated")


def test_it_refuses_truncated_encapsulated_pixel_data() -> None:
    data = next(path for path in pydicom_testfiles() if path.name == "JPEG2000.dcm").read_bytes()

    assert code_of(truncated(data, len(data) - 10)) == "truncated"


@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined-length", "defined-length"])
def test_it_refuses_truncated_nested_sequences(undefined_length: bool) -> None:
    data = deeply_nested(8, undefined_length=undefined_length)
    sequence = data.index(struct.pack("<HH", 0x0040, 0xA730))

    assert code_of(truncated(data, sequence + 60)) == "truncated"


@pytest.mark.parametrize(
    ("data", "warnings"),
    [(without_patient_id(), ["patient-id-absent"]), (make_instance(patient_id=""), []),
     (make_instance(patient_id="   "), [])],
    ids=["absent", "empty", "blank"],
)  # fmt: skip
def test_it_reads_an_instance_without_patient_id(data: bytes, warnings: list[str]) -> None:
    """Patient ID is Type 2 (PS3.3 C.7.1.1): empty is valid; absent is indexed with a warning."""
    header = read(data)

    assert header.patient_id == ""
    assert [w.code for w in header.warnings] == warnings


def test_it_keeps_a_patient_id_longer_than_lo_allows_whole_with_a_warning() -> None:
    header = read(make_instance(patient_id="P" * 65))

    assert header.patient_id == "P" * 65
    assert [w.code for w in header.warnings] == ["value-too-long"]


def test_it_refuses_a_patient_id_longer_than_the_index_holds_naming_the_instance() -> None:
    with pytest.raises(InvalidInstance) as caught:
        read(make_instance(patient_id="P" * 513, sop_uid="1.2.3.4", study_uid="1.2.3", series_uid="1.2.3.5"))

    assert caught.value.code == "value-too-long"
    assert caught.value.uids == ("1.2.3.4", "1.2.3", "1.2.3.5")


def test_it_keeps_values_longer_than_their_vr_whole_with_a_warning() -> None:
    accession = "RIS-2020-0000001-A"  # SH allows 16 characters
    header = read(make_instance(accession=accession, study_description="D" * 80))

    assert header.accession_number == accession and header.study_description == "D" * 80
    assert [w.code for w in header.warnings] == ["value-too-long", "value-too-long"]
    assert "AccessionNumber (0008,0050)" in header.warnings[0].message


def test_it_refuses_a_value_longer_than_the_index_keeps() -> None:
    assert code_of(make_instance(study_description="D" * 513)) == "value-too-long"


def test_it_accepts_uid_faults_of_the_wild_with_warnings() -> None:
    padded = _element_ui(0x0020000D, b"1.2.34  ")  # space padding, not one NUL
    header = read(make_instance(sop_uid="1.2.03.4", encoded={0x0020000D: padded}))

    assert (header.sop_instance_uid, header.study_instance_uid) == ("1.2.03.4", "1.2.34")
    assert sorted(w.code for w in header.warnings) == ["non-conformant-uid", "uid-padding"]


def _element_ui(tag: int, raw: bytes) -> bytes:
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, b"UI", len(raw)) + raw


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_it_refuses_an_instance_without_a_required_uid(keyword: str) -> None:
    omitted: dict[str, Any] = {keyword: None}

    assert code_of(make_instance(**omitted)) == "missing-uid"


@pytest.mark.parametrize("which", ["sop_uid", "study_uid", "series_uid"])
@pytest.mark.parametrize("uid", ["1.2.3.", "1..2", "1.2.a", "1." + "2" * 63, ".1.2"])
def test_it_refuses_an_invalid_uid(which: Any, uid: str) -> None:
    assert code_of(with_bad_uid(which, uid)) == "invalid-uid"


def test_it_refuses_a_multi_valued_uid() -> None:
    assert code_of(make_instance(study_uid="1.2.3\\1.2.4")) == "invalid-uid"


@pytest.mark.parametrize("undefined_length", [True, False], ids=["undefined-length", "defined-length"])
@pytest.mark.parametrize("depth", [MAX_SEQUENCE_DEPTH + 1, 5000])
def test_it_refuses_sequences_nested_too_deep(depth: int, undefined_length: bool) -> None:
    assert code_of(deeply_nested(depth, undefined_length=undefined_length)) == "too-deep"


def test_it_refuses_a_header_over_the_size_limit_without_reading_it_all() -> None:
    fp = CountingReader(make_instance(ICCProfile=b"\0" * (MAX_HEADER_BYTES + 2)))

    with pytest.raises(InvalidInstance) as caught:
        read_header(fp)

    assert caught.value.code == "too-large-header"
    assert fp.bytes_read < 64 * 1024


def test_it_refuses_an_element_claiming_gigabytes() -> None:
    claim = struct.pack("<HH2s2xI", 0x0028, 0x2000, b"OB", 0xF0000000)  # ICC Profile of 3.75 GiB

    assert code_of(make_instance(encoded={0x00282000: claim})) == "too-large-header"


def deflated(data: bytes) -> bytes:
    """``data`` re-encoded in Deflated Explicit VR Little Endian (PS3.5 §A.5), as pydicom writes it."""
    ds = pydicom.dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = pydicom.uid.DeflatedExplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_it_reads_pydicoms_deflated_file_as_pydicom_does() -> None:
    data = Path(str(pydicom.data.get_testdata_file("image_dfl.dcm", download=False))).read_bytes()

    header = read(data)

    assert header == as_pydicom_reads_it(data)
    assert header.transfer_syntax_uid == "1.2.840.10008.1.2.1.99" and header.pixel_data is None


def test_it_reads_a_deflated_instance_as_its_plain_encoding() -> None:
    plain = make_instance(patient_id="P-D", patient_name="Doe^Jane", pixel_bytes=4000)

    header = read(deflated(plain))

    assert header == dataclasses.replace(read(plain), transfer_syntax_uid="1.2.840.10008.1.2.1.99")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (bytes(MAX_INFLATED_BYTES + 1), "too-large-header"),  # 64 MiB + 1 of zeros, ~65 KiB deflated
        (bytes(2 * 1024 * 1024), "inflation-ratio"),
    ],
    ids=["size", "ratio"],
)
def test_it_bounds_what_a_deflated_file_inflates_to(payload: bytes, code: str) -> None:
    squeezer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    bomb = squeezer.compress(payload) + squeezer.flush()
    plain = make_instance()
    meta_end = file_meta_end(plain)

    data = deflated_meta(plain[:meta_end]) + bomb

    assert code_of(data) == code


def test_it_refuses_a_cut_or_broken_deflate_stream() -> None:
    data = deflated(make_instance(pixel_bytes=4000))
    meta_end = file_meta_end(data)

    assert code_of(data[: meta_end + (len(data) - meta_end) // 2]) == "truncated"
    assert code_of(data[:meta_end] + b"\xff" * 64) == "malformed"


def file_meta_end(data: bytes) -> int:
    head = Part10Head()
    head.feed(data)
    assert head.meta is not None
    return head.meta.end


def deflated_meta(meta: bytes) -> bytes:
    """A File Meta group naming the deflated transfer syntax in place of Explicit VR LE (same length)."""
    plain, deflate = b"1.2.840.10008.1.2.1\x00", b"1.2.840.10008.1.2.1.99"
    assert plain in meta
    group = meta.replace(plain, deflate)
    # The UI value grew by 2 bytes: the element length and the group length say so.
    at = group.index(deflate)
    group = group[: at - 2] + struct.pack("<H", len(deflate)) + group[at:]
    length_at = 132 + 8
    (length,) = struct.unpack_from("<I", group, length_at)
    return group[:length_at] + struct.pack("<I", length + 2) + group[length_at + 4 :]


def test_it_raises_errors_that_survive_pickling() -> None:
    error = InvalidInstance("truncated", "file ends inside the pixel data")

    copy = pickle.loads(pickle.dumps(error))

    assert (copy.code, str(copy)) == ("truncated", "file ends inside the pixel data")


# --- UIDs: the one rule of dicom/uid.py (tested there) -------------------------------------------


@pytest.mark.parametrize("which", ["sop_uid", "study_uid", "series_uid"])
def test_it_reads_a_uid_with_a_leading_zero_component_as_given(which: Any) -> None:
    """PS3.5 §9.1 forbids "03", but the rule accepts it (as Orthanc, dcm4chee and pynetdicom do)."""
    header = read(with_bad_uid(which, "1.2.03.4"))

    assert "1.2.03.4" in (header.sop_instance_uid, header.study_instance_uid, header.series_instance_uid)


# --- the factory itself --------------------------------------------------------------------


def test_it_makes_a_study_of_series_of_instances() -> None:
    headers = [read(data) for data in make_study(n_series=3, per_series=4, patient_id="P7")]

    assert len(headers) == 12
    assert len({header.study_instance_uid for header in headers}) == 1
    assert len({header.series_instance_uid for header in headers}) == 3
    assert len({header.sop_instance_uid for header in headers}) == 12
    assert {(header.series_number, header.instance_number) for header in headers} == {
        (series, number) for series in (1, 2, 3) for number in (1, 2, 3, 4)
    }
    assert {header.patient_id for header in headers} == {"P7"}


@pytest.mark.parametrize("pixel_bytes", [1024, 81920, 999, 65537 * 2])
def test_it_makes_pixel_data_consistent_with_the_image_attributes(pixel_bytes: int) -> None:
    ds = pydicom.dcmread(io.BytesIO(make_instance(pixel_bytes=pixel_bytes)))

    frames = int(ds.get("NumberOfFrames", 1))
    assert frames * ds.Rows * ds.Columns == pixel_bytes
    assert len(ds.PixelData) == pixel_bytes + pixel_bytes % 2
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


@pytest.mark.parametrize(("value", "offset", "warned"), [("+0530", "+05:30", []), ("-1200", "-12:00", []),
                         ("+1400", "+14:00", []), ("+1430", "", ["invalid-value"]), ("-1230", "", ["invalid-value"]),
                         ("+2500", "", ["invalid-value"]), ("UTC", "", ["invalid-value"])])  # fmt: skip
def test_it_reads_the_timezone_offset_that_qualifies_dates_and_times(
    value: str, offset: str, warned: list[str]
) -> None:
    header = read(make_instance(TimezoneOffsetFromUTC=value))

    assert header.timezone_offset == offset
    assert [w.code for w in header.warnings] == warned
