"""Every file of pydicom's bundled test corpus (pydicom/data/test_files) through real HTTP, one by one
and all together as one multipart body (issue 12): each is indexed with the values pydicom reads,
or rejected (refused at ingest) for the reason pydicom's own reading shows.

The expectation is computed from pydicom alone, never from PrizMed's code: pydicom reads the file
(or calls it not DICOM); its elements say whether a UID the index needs is missing or a value is cut
short; and the index's documented rules (docs/indexing.md: re-sent SOP Instance UIDs replace,
`patient-mismatch`, demographics and study fields follow the newest instance, a series keeps the
modality of its first instance) are replayed over pydicom's values in upload order.
"""

from __future__ import annotations

import io
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pydicom.data
import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels.utils import get_expected_length
from pydicom.valuerep import DA, TM

from tests.support import live
from tests.support.indexing import http_upload, wait_indexed
from tests.support.world import World

CORPUS_DIR = Path(str(pydicom.data.get_testdata_file("CT_small.dcm", download=False))).parent
CORPUS = sorted(path for path in CORPUS_DIR.iterdir() if path.is_file())
NEEDED_UIDS = ("SOPInstanceUID", "SOPClassUID", "StudyInstanceUID", "SeriesInstanceUID")
JPEG_BASELINE = ("SC_rgb_jpeg.dcm", "SC_rgb_jpeg_dcmd.dcm", "SC_rgb_jpeg_app14_dcmd.dcm",
                 "SC_jpeg_no_color_transform.dcm", "SC_jpeg_no_color_transform_2.dcm")  # fmt: skip


@dataclass(frozen=True)
class Expect:
    outcome: str  # refused (422 at ingest) | rejected | indexed
    reason: str = ""
    ds: Dataset | None = None


def expectation(path: Path) -> Expect:
    """What must become of the file, from pydicom's reading of it alone."""
    data = path.read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data))
    except InvalidDicomError:
        return Expect("refused")
    meta = ds.file_meta
    # PS3.10 §7.1: a Part-10 file has the DICM prefix and the two Type 1 UIDs of its meta group.
    if data[128:132] != b"DICM" or not meta.get("TransferSyntaxUID") or not meta.get("MediaStorageSOPClassUID"):
        return Expect("refused")
    if _cut_short(ds):
        return Expect("rejected", "truncated")
    if any(not str(ds.get(keyword) or "").strip("\0 ") for keyword in NEEDED_UIDS):
        return Expect("rejected", "missing-uid")
    return Expect("indexed", ds=ds)


def _cut_short(ds: Dataset) -> bool:
    """pydicom read fewer bytes of a value than its length says, or less pixel data than the image
    needs (pydicom's pixel handlers refuse such a file: "less than expected")."""
    last = list(ds._dict.values())[-1] if ds._dict else None
    if isinstance(last, RawDataElement) and last.value is not None and last.length != 0xFFFFFFFF:
        if len(last.value) < last.length:
            return True
    if "PixelData" in ds and not ds.file_meta.TransferSyntaxUID.is_compressed and "Rows" in ds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return len(ds.PixelData) < get_expected_length(ds)
            except (TypeError, ValueError, AttributeError, KeyError):
                return False  # image attributes pydicom cannot size: nothing says it is cut
    return False


def _text(ds: Dataset, keyword: str) -> str:
    return str(ds.get(keyword) or "").replace("\0", "").strip()


def _date(ds: Dataset) -> str | None:
    value = _text(ds, "StudyDate")
    return DA(value).isoformat() if value else None  # pydicom's DA, "YYYY.MM.DD" included


def _time(ds: Dataset) -> str | None:
    value = _text(ds, "StudyTime")
    # pydicom's TM (a datetime.time); it refuses the ACR-NEMA "HH:MM:SS" PS3.5 §6.2 asks readers
    # to accept, so that form is given to it without its colons.
    return TM(value.replace(":", "")).isoformat() if value else None


@dataclass
class Index:
    """The index's documented rules replayed over pydicom's values, in upload order."""

    owners: dict[str, str] = field(default_factory=dict)  # study UID -> Patient ID
    names: dict[str, str] = field(default_factory=dict)  # Patient ID -> newest name
    studies: dict[str, Dataset] = field(default_factory=dict)  # study UID -> newest instance
    modality: dict[tuple[str, str], str] = field(default_factory=dict)  # first per series
    instances: dict[str, tuple[str, str]] = field(default_factory=dict)  # SOP -> (study, series)

    def send(self, ds: Dataset) -> str:
        study, series, sop = (_text(ds, k) for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"))
        patient = _text(ds, "PatientID") or f"\\{study}"  # an empty ID: a patient of this study alone
        if self.owners.setdefault(study, patient) != patient:
            return "patient-mismatch"
        replaced = sop in self.instances
        self.names[patient] = str(ds.get("PatientName") or "").strip()
        self.studies[study] = ds
        self.modality.setdefault((study, series), _text(ds, "Modality"))
        self.instances[sop] = (study, series)
        return "replaced" if replaced else "indexed"

    def check(self, api: httpx.Client, headers: dict[str, str]) -> None:
        """Every study the rules leave, as the studies API shows it."""
        live_studies = {study for study, _ in self.instances.values()}
        listed = api.get("/studies", params={"limit": 200}, headers=headers).json()["results"]
        assert sorted(s["study_uid"] for s in listed) == sorted(live_studies)
        for uid in live_studies:
            ds, body = self.studies[uid], api.get(f"/studies/{uid}", headers=headers).json()
            series = {s for study, s in self.instances.values() if study == uid}
            owner = self.owners[uid]
            assert body["patient"]["patient_id"] == ("" if owner.startswith("\\") else owner), uid
            assert body["patient"]["name"] == self.names[owner], uid
            assert (body["study_date"], body["study_time"]) == (_date(ds), _time(ds)), uid
            assert body["modalities"] == sorted({self.modality[(uid, s)] for s in series} - {""}), uid
            assert (body["series_count"], body["instance_count"]) == (
                len(series), sum(study == uid for study, _ in self.instances.values())
            ), uid  # fmt: skip


def _post_one(api: httpx.Client, headers: dict[str, str], data: bytes) -> httpx.Response:
    request_id = str(uuid.uuid4())
    content_type = {"Content-Type": "application/dicom", "X-Request-Id": request_id}
    return api.post("/dicom/stream", content=data, headers={**headers, **content_type})


def _instance_outcomes(api: httpx.Client, headers: dict[str, str], request_id: str) -> list[dict[str, Any]]:
    body = api.get(f"/dicom/uploads/{request_id}", headers=headers).json()
    assert body["instances_indexed"] + body["instances_rejected"] == body["instances_accepted"]
    assert body["instances_accepted"] == len(body["instances"])
    return list(body["instances"])


def _assert_outcome(got: dict[str, Any], expect: Expect, replayed: str | None, name: str) -> None:
    if expect.outcome == "rejected":
        assert (got["outcome"], got["reason_code"]) == ("rejected", expect.reason), name
        return
    assert expect.ds is not None
    assert got["sop_instance_uid"] == _text(expect.ds, "SOPInstanceUID"), name
    if replayed == "patient-mismatch":
        assert (got["outcome"], got["reason_code"]) == ("rejected", "patient-mismatch"), name
    else:
        assert got["outcome"] == replayed, name


def test_it_accounts_for_every_corpus_file_sent_one_by_one(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    assert len(CORPUS) >= 80  # the corpus is there, offline
    index, headers = Index(), world.bob.headers
    for path in CORPUS:
        expect = expectation(path)
        response = _post_one(api, headers, path.read_bytes())
        if expect.outcome == "refused":
            assert response.status_code == 422, path.name
            continue
        assert response.status_code == 202, (path.name, response.text)
        request_id = response.headers["X-Request-Id"]
        wait_indexed(request_id)
        [got] = _instance_outcomes(api, headers, request_id)
        replayed = index.send(expect.ds) if expect.ds is not None else None
        _assert_outcome(got, expect, replayed, path.name)
    index.check(api, headers)


def test_it_accounts_for_every_corpus_file_sent_in_one_multipart_body(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    sent = [(path, expectation(path)) for path in CORPUS]
    sent = [(path, expect) for path, expect in sent if expect.outcome != "refused"]  # ingest refuses a whole body
    index, headers = Index(), world.bob.headers
    request_id = http_upload(api, world.bob, [path.read_bytes() for path, _ in sent])
    wait_indexed(request_id)

    outcomes = _instance_outcomes(api, headers, request_id)
    assert len(outcomes) == len(sent)
    for got, (path, expect) in zip(outcomes, sent, strict=True):
        replayed = index.send(expect.ds) if expect.ds is not None else None
        _assert_outcome(got, expect, replayed, path.name)
    index.check(api, headers)


@pytest.mark.parametrize("name", JPEG_BASELINE)
def test_it_indexes_pydicoms_jpeg_baseline_files(
    name: str, api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    """Issue 12 item 1: these were refused as "truncated"; pydicom reads them and their frames."""
    data = (CORPUS_DIR / name).read_bytes()
    request_id = http_upload(api, world.bob, [data])
    wait_indexed(request_id)

    [got] = _instance_outcomes(api, world.bob.headers, request_id)
    assert (got["outcome"], got["reason_code"]) == ("indexed", ""), got
