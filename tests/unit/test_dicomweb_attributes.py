"""studies.index.dicomweb_attributes: the image attributes and QIDO-RS keys DICOMweb keeps of an
instance, read from its header (Explicit and Implicit VR), and left empty when they do not parse."""

from __future__ import annotations

import datetime
import io
import struct
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian

from dicom.header import read_header
from studies.index.dicomweb_attributes import dicomweb_attributes
from tests.support.dicomfactory import make_instance


def _implicit(data: bytes) -> bytes:
    """The same instance in Implicit VR Little Endian (no VR in the file: the dictionary's)."""
    ds = dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    out = io.BytesIO()
    ds.save_as(out, implicit_vr=True, little_endian=True, enforce_file_format=True)
    return out.getvalue()


def _explicit(tag: int, text: str) -> bytes:
    """An element as written (Explicit VR Little Endian), whatever its value: pydicom would refuse it."""
    value = text.encode("ascii") + b" " * (len(text) % 2)
    vr = {0x00280008: b"IS", 0x00400244: b"DA", 0x00400245: b"TM"}[tag]
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr, len(value)) + value


def _request(sps_id: str, procedure_id: str) -> Sequence:
    item = Dataset()
    item.ScheduledProcedureStepID, item.RequestedProcedureID = sps_id, procedure_id
    return Sequence([item])


def _instance(**extra: Any) -> bytes:
    attributes: dict[str, Any] = {
        "StudyID": "S-17",
        "PerformedProcedureStepStartDate": "20240305",
        "PerformedProcedureStepStartTime": "101530.25",
        "RequestAttributesSequence": _request("SPS-1 ", "RP-9"),
        "NumberOfFrames": "1",
    }
    return make_instance(**{**attributes, **extra})


def test_it_reads_the_image_attributes_and_qido_keys() -> None:
    for data in (_instance(), _implicit(_instance())):
        got = dicomweb_attributes(read_header(io.BytesIO(data)))
        assert (got.rows, got.columns, got.samples_per_pixel, got.bits_allocated) == (32, 32, 1, 8)
        assert got.number_of_frames == 1
        assert got.study_id == "S-17"
        assert got.performed_procedure_step_start_date == datetime.date(2024, 3, 5)
        assert got.performed_procedure_step_start_time == datetime.time(10, 15, 30)
        assert (got.scheduled_procedure_step_id, got.requested_procedure_id) == ("SPS-1", "RP-9")
        assert got.pixel_data is not None and got.pixel_data["frame_length"] == 32 * 32


def test_values_that_do_not_parse_are_left_empty() -> None:
    unparsable = {0x00280008: "many", 0x00400244: "2024-03", 0x00400245: "25x"}  # IS, DA, TM
    data = make_instance(
        encoded={tag: _explicit(tag, value) for tag, value in unparsable.items()},
        StudyID="S-17",
        RequestAttributesSequence=_request("SPS-1", "RP-9"),
    )
    got = dicomweb_attributes(read_header(io.BytesIO(data)))
    assert got.number_of_frames == 1  # an image with pixel data has at least one frame
    assert (got.performed_procedure_step_start_date, got.performed_procedure_step_start_time) == (None, None)


def test_an_instance_without_pixel_data_has_no_frames() -> None:
    got = dicomweb_attributes(read_header(io.BytesIO(make_instance(pixel_bytes=0, StudyID="S-1"))))
    assert (got.number_of_frames, got.pixel_data, got.study_id) == (None, None, "S-1")
