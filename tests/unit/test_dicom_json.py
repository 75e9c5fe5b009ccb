"""dicom.dicom_json: PS3.18 Annex F built from the header read's raw data set, value for value
what pydicom reads, on every pydicom test file the index accepts."""

from __future__ import annotations

import io
import json
import warnings

import pydicom
import pytest
from pydicom.data import get_testdata_files
from pydicom.dataset import Dataset

from dicom.dicom_json import dicom_json
from dicom.header import InvalidInstance, read_header


def _indexable() -> list[str]:
    found = []
    for path in sorted(get_testdata_files("*")):
        try:
            with open(path, "rb") as fp:
                read_header(fp)
        except (InvalidInstance, OSError):
            continue
        found.append(path)
    return found


FILES = _indexable()


def test_it_covers_many_files() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.rsplit("/", 1)[-1])
def test_it_writes_what_pydicom_reads(path: str) -> None:
    with open(path, "rb") as fp:
        header = read_header(fp)
    assert header.dataset is not None
    built = dicom_json(
        header.dataset, bulk_uri=lambda p: f"bulk/{p}", pixel_data_vr="OW" if header.pixel_data else None
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        served = Dataset.from_json(json.loads(json.dumps(built.attributes)), bulk_data_uri_handler=lambda *a: None)
        read = pydicom.dcmread(path)
        raw = open(path, "rb").read()
    for elem in read:
        if elem.tag.group == 0x0002 or elem.tag >= 0x7FE00010:
            continue  # File Meta, pixel data and what follows it: not part of the header read
        other = served[elem.tag]
        key = f"{elem.tag:08X}"
        if key in built.bulk_data:  # served by reference: its extent holds its bytes
            offset, length = built.bulk_data[key]
            assert raw[offset : offset + length] == elem.value
            continue
        if elem.VR == "SQ":
            assert len(other.value) == len(elem.value), elem.tag
            continue
        if elem.VR in ("IS", "DS") and not _numeric(elem.value):
            assert other.value in (None, ""), elem.tag  # not a number: left out, not invented
            continue
        assert elem.value == other.value or str(elem.value) == str(other.value), (elem.tag, elem.value, other.value)


def _numeric(value: object) -> bool:
    values = value if isinstance(value, pydicom.multival.MultiValue) else [value]
    try:
        [float(str(v)) for v in values if str(v) != ""]
    except ValueError:
        return False
    return True


def test_it_puts_large_binary_values_behind_bulk_data_uris() -> None:
    path = next(p for p in FILES if p.endswith("examples_overlay.dcm"))
    raw = open(path, "rb").read()
    header = read_header(io.BytesIO(raw))
    assert header.dataset is not None
    built = dicom_json(header.dataset, bulk_uri=lambda p: f"bulk/{p}")
    overlay = built.attributes["60003000"]
    assert overlay == {"vr": "OW", "BulkDataURI": "bulk/60003000"}
    offset, length = built.bulk_data["60003000"]
    assert raw[offset : offset + length] == pydicom.dcmread(path)[0x60003000].value
    assert "7FE00010" not in built.attributes  # only when the caller names its VR
