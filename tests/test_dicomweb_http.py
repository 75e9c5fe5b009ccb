"""DICOMweb's HTTP behaviour over real HTTP (PS3.18 §8, §10.4-10.5; RFC 9110, 9530): bytes as
stored, digests, ranges, ETags, content negotiation, the STOW-RS store response and its
failure reasons, and refusals that allocate nothing."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from pydicom.data import get_testdata_file

from studies.models import Instance, Upload
from tests.support.dicomfactory import make_instance, make_study, truncated
from tests.support.dicomweb_support import STOW_TYPE, as_stored, read_bytes
from tests.support.live import Server
from tests.support.multipart import build_multipart
from tests.support.world import Party, World

BOUNDARY = "dicomweb-http-test"
JSON = {"Accept": "application/dicom+json"}


def stow(api: httpx.Client, party: Party, parts: list[bytes], path: str = "/dicomweb/studies") -> httpx.Response:
    headers = {**party.headers, **JSON, "Content-Type": STOW_TYPE.format(boundary=BOUNDARY)}
    return api.post(path, content=build_multipart(parts, BOUNDARY), headers=headers)


def instance_path(data: bytes) -> str:
    row = Instance.objects.select_related("series__study").get(sop_uid=_uid_of(data, "SOPInstanceUID"))
    return f"/dicomweb/studies/{row.series.study.study_uid}/series/{row.series.series_uid}/instances/{row.sop_uid}"


def _uid_of(data: bytes, keyword: str) -> str:
    return str(getattr(read_bytes(data), keyword))


def test_it_serves_an_instance_as_stored_with_its_digest_and_ranges(api, world: World, indexer) -> None:
    data = make_instance(patient_id="H1", pixel_bytes=64 * 1024)
    assert stow(api, world.bob, [data]).status_code == 200
    path = instance_path(data)
    whole = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom"})
    assert whole.status_code == 200
    assert whole.content == as_stored(data)
    digest = base64.b64encode(hashlib.sha256(as_stored(data)).digest()).decode()
    assert whole.headers["repr-digest"] == f"sha-256=:{digest}:"
    assert whole.headers["cache-control"] == "no-store"
    assert whole.headers["content-type"] == "application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
    part = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom", "Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == as_stored(data)[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    tail = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom", "Range": "bytes=-100"})
    assert tail.content == as_stored(data)[-100:]
    resumed = api.get(path, headers={**world.bob.headers, "Range": "bytes=5000-"})  # multipart, resumed
    full = api.get(path, headers=world.bob.headers)
    assert full.headers["content-type"].startswith('multipart/related; type="application/dicom"')
    assert resumed.status_code == 206 and resumed.content == full.content[5000:]
    assert as_stored(data) in full.content
    beyond = api.get(path, headers={**world.bob.headers, "Accept": "application/dicom", "Range": "bytes=999999-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"


def test_it_answers_metadata_with_an_etag(api, world: World, indexer) -> None:
    data = make_instance(patient_id="H2")
    stow(api, world.bob, [data])
    path = instance_path(data).rsplit("/instances/", 1)[0] + "/metadata"
    first = api.get(path, headers=world.bob.headers)
    assert first.status_code == 200 and first.headers["content-type"] == "application/dicom+json"
    again = api.get(path, headers={**world.bob.headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    stow(api, world.bob, [make_instance(patient_id="H2", study_uid=_study(data), series_uid=_series(data))])
    changed = api.get(path, headers={**world.bob.headers, "If-None-Match": first.headers["etag"]})
    assert changed.status_code == 200 and len(changed.json()) == 2


def _study(data: bytes) -> str:
    return instance_path(data).split("/")[3]


def _series(data: bytes) -> str:
    return instance_path(data).split("/")[5]


def test_it_refuses_what_it_cannot_produce_with_406(api, world: World, indexer) -> None:
    data = make_instance(patient_id="H3")
    stow(api, world.bob, [data])
    path = instance_path(data)
    jpeg = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50'
    for where, accept in ((path, jpeg), (path + "/metadata", "image/png"), (path + "/rendered", "image/gif"),
                          (path + "/frames/1", 'multipart/related; type="image/jpeg"')):  # fmt: skip
        response = api.get(where, headers={**world.bob.headers, "Accept": accept})
        assert response.status_code == 406, where
        assert response.headers["content-type"] == "application/problem+json"
    stored = 'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'
    assert api.get(path, headers={**world.bob.headers, "Accept": stored}).status_code == 200


def test_it_answers_the_store_response_with_failure_reasons(api, world: World, indexer) -> None:
    study = make_study(n_series=1, per_series=2, patient_id="H4")
    other = make_instance(patient_id="H4")
    broken = truncated(make_instance(patient_id="H4", pixel_bytes=4096), 2000)
    study_uid = _uid_of(study[0], "StudyInstanceUID")

    response = stow(api, world.bob, [*study, other, broken], path=f"/dicomweb/studies/{study_uid}")

    assert response.status_code == 202  # some stored, some failed (PS3.18 Table 10.5.3-1)
    body = response.json()
    assert body["00081190"]["Value"][0].endswith(f"/api/v2/dicomweb/studies/{study_uid}")
    referenced = {item["00081155"]["Value"][0] for item in body["00081199"]["Value"]}
    assert referenced == {_uid_of(d, "SOPInstanceUID") for d in study}
    failed = {item["00081155"]["Value"][0]: item["00081197"]["Value"][0] for item in body["00081198"]["Value"]}
    assert failed == {_uid_of(other, "SOPInstanceUID"): 0xA900, _uid_of(broken, "SOPInstanceUID"): 0xC000}
    assert not Instance.objects.filter(sop_uid=_uid_of(other, "SOPInstanceUID")).exists()
    none = stow(api, world.bob, [broken])
    assert none.status_code == 409 and none.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xC000]


def test_it_fails_instances_past_the_plans_study_size_with_a700(api, world: World, indexer) -> None:
    plan = world.bob.org.plan
    plan.max_study_bytes = 300_000
    plan.save()
    first = make_instance(patient_id="H5", pixel_bytes=200_000)
    assert stow(api, world.bob, [first]).status_code == 200
    second = make_instance(patient_id="H5", pixel_bytes=200_000, study_uid=_uid_of(first, "StudyInstanceUID"))
    response = stow(api, world.bob, [second])
    assert response.status_code == 409
    assert response.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0xA700]


def test_it_refuses_a_body_that_is_not_a_stow_body(api, world: World) -> None:
    headers = {**world.bob.headers, **JSON}
    plain = api.post(
        "/dicomweb/studies", content=make_instance(), headers={**headers, "Content-Type": "application/dicom"}
    )
    assert plain.status_code == 415
    xml = 'multipart/related; type="application/dicom+xml"; boundary=x'
    assert api.post("/dicomweb/studies", content=b"--x--", headers={**headers, "Content-Type": xml}).status_code == 415
    junk = api.post("/dicomweb/studies", content=build_multipart([b"not dicom" * 20], BOUNDARY),
                    headers={**headers, "Content-Type": STOW_TYPE.format(boundary=BOUNDARY)})  # fmt: skip
    assert junk.status_code == 422
    assert not Upload.objects.exists()  # nothing half-written


def test_it_refuses_to_render_a_giant_header_at_once_with_memory_flat(
    server: Server, api, world: World, indexer
) -> None:
    # 65535 × 65535 × 1000 frames of 16 bits claimed, 1 kB of pixel data behind it.
    data = make_instance(patient_id="H6", Rows=65535, Columns=65535, NumberOfFrames="1000", BitsAllocated=16,
                         BitsStored=16, HighBit=15)  # fmt: skip
    assert stow(api, world.bob, [data]).status_code == 200
    path = instance_path(data)
    before = _peak_rss_kb(server)
    for where in (path + "/rendered", path + "/thumbnail", path + "/frames/1/rendered",
                  path.rsplit("/instances/", 1)[0] + "/rendered"):  # fmt: skip
        response = api.get(where, headers=world.bob.headers)
        assert response.status_code == 422, where
        assert "over the" in response.json()["detail"]
    frames = api.get(path + "/frames/1", headers=world.bob.headers)
    assert frames.status_code == 422  # the frames the header claims are not in the file
    assert _peak_rss_kb(server) - before < 20 * 1024  # a frame would be 8.6 GB


def _peak_rss_kb(server: Server) -> int:
    assert server.proc is not None
    status = open(f"/proc/{server.proc.pid}/status").read()
    return int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1])


@pytest.mark.services  # with no worker running, nothing indexes: the wait runs out for sure
def test_it_answers_202_with_a_warning_when_indexing_outlasts_the_wait(child_env, run_dir, world: World, clock) -> None:
    from tests.support import live

    server = live.server({**child_env, "DICOMWEB_STOW_WAIT_SECONDS": "1"}, run_dir)
    try:
        with httpx.Client(base_url=f"{server.url}/api/v2", timeout=30) as api:
            response = stow(api, world.bob, [make_instance(patient_id="H7")])
            assert response.status_code == 202
            assert response.headers["warning"].startswith('299 - "The instances are stored;')
            status = api.get(response.headers["location"].removeprefix("/api/v2"), headers=world.bob.headers)
            assert status.json()["state"] == "queued"
    finally:
        server.stop()


def test_it_renders_with_the_window_viewport_and_quality_asked(api: httpx.Client, world: World, indexer) -> None:
    data = make_instance(patient_id="H8", pixel_bytes=64 * 64)
    stow(api, world.bob, [data])
    path = instance_path(data) + "/rendered"

    def image(**params: str) -> bytes:
        response = api.get(path, params=params, headers={**world.bob.headers, "Accept": "image/png"})
        assert response.status_code == 200, response.text
        return response.content

    plain = image()
    assert image(window="64,32") != plain
    assert image(window="64,32,sigmoid") not in (plain, image(window="64,32"))
    assert image(window="127.5,255,linear-exact") == plain  # 0 to 255: the frame's own range, the default
    jpeg = api.get(path, params={"quality": "10", "accept": "image/jpeg"}, headers=world.bob.headers)
    assert jpeg.headers["content-type"] == "image/jpeg"
    for bad in ({"window": "a,b"}, {"window": "1,2,cubic"}, {"viewport": "0,5"}, {"viewport": "5,5,1,1,2,2"},
                {"quality": "101"}, {"annotation": "patient"}):  # fmt: skip
        assert api.get(path, params=bad, headers=world.bob.headers).status_code == 400, bad


def test_it_serves_bulk_data_with_ranges(api: httpx.Client, world: World, indexer) -> None:
    data = Path(str(get_testdata_file("examples_overlay.dcm"))).read_bytes()
    assert stow(api, world.bob, [data]).status_code == 200
    path = instance_path(data)
    (metadata,) = api.get(path + "/metadata", headers=world.bob.headers).json()
    bulk = urlsplit(metadata["60003000"]["BulkDataURI"]).path.removeprefix("/api/v2")
    assert bulk == path + "/bulkdata/60003000"
    overlay = read_bytes(data)[0x60003000].value
    whole = api.get(bulk, headers=world.bob.headers)
    assert whole.status_code == 200 and whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-type"].startswith('multipart/related; type="application/octet-stream"')
    assert overlay in whole.content
    part = api.get(bulk, headers={**world.bob.headers, "Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == whole.content[10:]
    assert api.get(path + "/bulkdata/00100010", headers=world.bob.headers).status_code == 404
