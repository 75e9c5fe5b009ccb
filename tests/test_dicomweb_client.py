"""DICOMweb through the standard client: dicomweb-client, unmodified, against a running uvicorn
(and, in the services run, a real Celery worker), on pydicom's own test files (PS3.18 §10.4-10.6)."""

from __future__ import annotations

import io
import json
from urllib.parse import urlsplit

import pytest
from PIL import Image
from pydicom.dataset import Dataset
from requests import HTTPError

from tests.support.dicomfactory import make_instance
from tests.support.dicomweb_support import (
    JPEG_MULTIFRAME,
    NATIVE_MULTIFRAME,
    VARIETY,
    dicomweb_client,
    encoded,
    frames_of,
    read_testfile,
    same_values,
)
from tests.support.world import World


@pytest.fixture
def stored(server, world: World, indexer) -> dict[str, Dataset]:
    """VARIETY stored by store_instances, by SOP Instance UID, as pydicom reads the bytes sent
    (store_instances writes each data set with dcmwrite, which leaves out group lengths)."""
    client = dicomweb_client(server, world.bob)
    datasets: dict[str, Dataset] = {}
    for name in VARIETY:
        ds = read_testfile(name)
        datasets.setdefault(str(ds.SOPInstanceUID), ds)
    answer = client.store_instances(list(datasets.values()))
    datasets = {sop: _read(encoded(ds)) for sop, ds in datasets.items()}
    referenced = [item.ReferencedSOPInstanceUID for item in answer.ReferencedSOPSequence]
    assert sorted(referenced) == sorted(datasets)
    assert "FailedSOPSequence" not in answer
    return datasets


def _where(ds: Dataset) -> tuple[str, str, str]:
    return str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID)


def test_it_retrieves_every_instance_as_it_was_stored(server, world: World, stored) -> None:
    client = dicomweb_client(server, world.bob)
    for sop, ds in stored.items():
        study, series, _ = _where(ds)
        served = client.retrieve_instance(study, series, sop)
        assert encoded(served)[128:] == encoded(ds)[128:], sop  # byte for byte, preamble aside
        assert not same_values(ds, served, skip_pixels=False)
    by_study: dict[str, set[str]] = {}
    for sop, ds in stored.items():
        by_study.setdefault(str(ds.StudyInstanceUID), set()).add(sop)
    for study, sops in by_study.items():
        assert {str(d.SOPInstanceUID) for d in client.retrieve_study(study)} == sops
    ds = stored[str(read_testfile("CT_small.dcm").SOPInstanceUID)]
    (served,) = client.retrieve_series(str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID))
    assert encoded(served)[128:] == encoded(ds)[128:]


def test_it_serves_metadata_equal_to_what_pydicom_reads(server, world: World, stored) -> None:
    client = dicomweb_client(server, world.bob)
    for sop, ds in stored.items():
        study, series, _ = _where(ds)
        instance = client.retrieve_instance_metadata(study, series, sop)
        served = Dataset.from_json(instance, bulk_data_uri_handler=lambda tag, vr, uri: None)
        assert not same_values(ds, served), sop
        if "PixelData" in ds:
            assert instance["7FE00010"]["BulkDataURI"].endswith(f"/instances/{sop}/bulkdata/7FE00010")
    waveform = stored[str(read_testfile("waveform_ecg.dcm").SOPInstanceUID)]
    study, series, sop = _where(waveform)
    instance = client.retrieve_instance_metadata(study, series, sop)
    uri = instance["54000100"]["Value"][0]["54001010"]["BulkDataURI"]  # Waveform Data, inside a sequence
    # Absolute, on the request's own host (or PRIZMED_PUBLIC_URL when set): follow its path here.
    assert client.retrieve_bulkdata(server.url + urlsplit(uri).path) == [waveform.WaveformSequence[0].WaveformData]
    series_metadata = client.retrieve_series_metadata(study, series)
    assert [json.dumps(i, sort_keys=True) for i in series_metadata] == [json.dumps(instance, sort_keys=True)]
    assert len(client.retrieve_study_metadata(study)) == 1


@pytest.mark.parametrize("name", [NATIVE_MULTIFRAME, JPEG_MULTIFRAME, "JPEG2000.dcm", "SC_rgb_rle_2frame.dcm"])
def test_it_serves_frames_equal_to_pydicoms(server, world: World, stored, name: str) -> None:
    ds = stored[str(read_testfile(name).SOPInstanceUID)]
    frames = frames_of(ds)
    numbers = list(range(1, len(frames) + 1))
    served = dicomweb_client(server, world.bob).retrieve_instance_frames(*_where(ds), frame_numbers=numbers)
    assert served == frames
    picked = [numbers[-1], 1] if len(numbers) > 1 else [1]
    served = dicomweb_client(server, world.bob).retrieve_instance_frames(*_where(ds), frame_numbers=picked)
    assert served == [frames[n - 1] for n in picked]


def test_it_renders_instances_and_thumbnails(server, world: World, stored) -> None:
    client = dicomweb_client(server, world.bob)
    for name in ("CT_small.dcm", JPEG_MULTIFRAME, "examples_palette.dcm", NATIVE_MULTIFRAME, "JPEG2000.dcm"):
        ds = read_testfile(name)
        rendered = client.retrieve_instance_rendered(*_where(ds), media_types=("image/jpeg",))
        image = Image.open(io.BytesIO(rendered))
        assert (image.format, image.size) == ("JPEG", (ds.Columns, ds.Rows)), name
        png = client.retrieve_instance_frames_rendered(*_where(ds), frame_numbers=[1], media_types=("image/png",))
        assert Image.open(io.BytesIO(png)).format == "PNG"
        study, series, sop = _where(ds)
        url = f"{server.url}/api/v2/dicomweb/studies/{study}/series/{series}/instances/{sop}/thumbnail"
        response = client._session.get(url, headers={"Accept": "image/jpeg"})  # thumbnails: no client method
        thumb = Image.open(io.BytesIO(response.content))
        scale = min(128 / ds.Columns, 128 / ds.Rows, 1)
        assert thumb.size == (max(1, round(ds.Columns * scale)), max(1, round(ds.Rows * scale))), name
    small = client.retrieve_instance_rendered(*_where(read_testfile("CT_small.dcm")), params={"viewport": "64,64"})
    assert Image.open(io.BytesIO(small)).size == (64, 64)


def test_it_searches_with_the_standard_matching(server, world: World, indexer) -> None:
    client = dicomweb_client(server, world.bob)
    made = [
        make_instance(patient_id="QA1", patient_name="Smith^Anna", study_date="20240105", modality="CT"),
        make_instance(patient_id="QA2", patient_name="SMYTHE^Bob", study_date="20240210", modality="MR"),
        make_instance(patient_id="QA3", patient_name="Jones^Carl", study_date="20240301", modality="US"),
    ]
    client.store_instances([_read(data) for data in made])
    uids = {str(_read(d).PatientID): str(_read(d).StudyInstanceUID) for d in made}

    def found(**filters: str) -> list[str]:
        return sorted(str(Dataset.from_json(r).PatientID) for r in client.search_for_studies(search_filters=filters))

    assert found(PatientID="QA2") == ["QA2"]
    assert found(PatientName="sm*") == ["QA1", "QA2"]  # case-insensitive wildcard
    assert found(PatientName="S?ith^Anna") == ["QA1"]
    assert found(StudyDate="20240101-20240229") == ["QA1", "QA2"]
    assert found(StudyDate="20240201-") == ["QA2", "QA3"]
    assert found(ModalitiesInStudy="MR,US") == ["QA2", "QA3"]
    assert found(StudyInstanceUID=f"{uids['QA1']},{uids['QA3']}") == ["QA1", "QA3"]
    (study,) = client.search_for_studies(search_filters={"PatientID": "QA1"}, fields=["StudyDescription", "00180015"])
    assert study["00201208"]["Value"] == [1] and study["00080061"]["Value"] == ["CT"]
    assert study["00180015"]["Value"] == ["CHEST"]  # from the stored metadata: not a study column
    everything = client.search_for_studies(get_remaining=True, limit=2)
    assert len(everything) == 3
    first, second = client.search_for_studies(limit=2), client.search_for_studies(limit=2, offset=2)
    assert len(first) == 2 and len(second) == 1
    assert {r["0020000D"]["Value"][0] for r in [*first, *second]} == set(uids.values())
    (series,) = client.search_for_series(uids["QA2"])
    assert series["00080060"]["Value"] == ["MR"] and series["00201209"]["Value"] == [1]
    assert [r["00100020"]["Value"] for r in client.search_for_series(search_filters={"Modality": "US"})] == [["QA3"]]
    (instance,) = client.search_for_instances(uids["QA3"], fields=["all"])
    assert instance["00280010"]["Value"] == [32] and instance["00080016"]["Value"]
    assert len(client.search_for_instances(search_filters={"PatientName": "*^Carl"})) == 1


def _read(data: bytes) -> Dataset:
    import pydicom

    return pydicom.dcmread(io.BytesIO(data))


def test_it_refuses_unknown_and_malformed_parameters(server, world: World, indexer) -> None:
    client = dicomweb_client(server, world.bob)
    for filters in ({"NoSuchKeyword": "1"}, {"StudyDate": "2024-01-01"}, {"PatientBirthDate": "x"}, {"Rows": "1"}):
        with pytest.raises(HTTPError) as refused:
            client.search_for_studies(search_filters=filters)
        response = refused.value.response
        assert response is not None and response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
