"""One UID rule (dicom/uid.py, PS3.5 §9.1) over real HTTP: ingest, indexing, the studies API and
the record stream's filter give a UID the same verdict.

A component with a leading zero ("1.2.03") breaks PS3.5 §9.1 but is accepted, as Orthanc,
dcm4chee and pynetdicom accept it; an empty component, a letter or more than 64 characters is
refused everywhere.
"""

from __future__ import annotations

import uuid

import httpx

from studies.models import Instance, Study, UploadItem
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.indexing import http_upload, wait_indexed
from tests.support.world import World
from tests.test_auth import assert_problem

RECORDS = "/records/stream"


def as_bundle(world: World) -> dict[str, str]:
    return {**world.bob.headers, "Accept": "application/fhir+json"}


def test_it_answers_404_not_400_for_an_unknown_study_whose_uid_has_a_leading_zero(
    api: httpx.Client, world: World
) -> None:
    for path in ("/studies/1.2.03", "/studies/1.2.03/series"):
        response = api.get(path, headers=world.bob.headers)
        assert_problem(response, 404)
    # The record stream's filter takes the same UID: the same verdict on both routes.
    response = api.get(RECORDS, params={"study": "1.2.03"}, headers=as_bundle(world))
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 0


def test_it_serves_a_study_with_a_leading_zero_uid_through_the_api_and_the_record_filter(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    study_uid = "1.2.03.4"
    files = [make_instance(study_uid=study_uid, series_uid=f"{study_uid}.1", sop_uid=f"{study_uid}.1.{n}")
             for n in (1, 2)]  # fmt: skip
    upload = wait_indexed(http_upload(api, world.bob, files))
    assert (upload.state, upload.instances_indexed, upload.instances_rejected) == ("done", 2, 0)

    study = api.get(f"/studies/{study_uid}", headers=world.bob.headers)
    assert study.status_code == 200, study.text
    assert study.json()["instance_count"] == 2
    bundle = api.get(RECORDS, params={"study": study_uid}, headers=as_bundle(world))
    assert bundle.status_code == 200, bundle.text
    assert [e["resource"]["id"] for e in bundle.json()["entry"]] == [study_uid]


def test_it_indexes_an_instance_whose_file_meta_sop_instance_uid_has_a_leading_zero(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    # (0002,0003) Media Storage SOP Instance UID and (0008,0018) SOP Instance UID are both "01.2".
    data = make_instance(sop_uid="01.2")
    request_id = str(uuid.uuid4())
    response = api.post(
        "/dicom/stream",
        content=data,
        headers={**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id},
    )
    assert response.status_code == 202, response.text

    upload = wait_indexed(request_id)
    item = UploadItem.objects.get(upload=upload)
    assert (upload.state, upload.instances_indexed, item.reason_code) == ("done", 1, "")
    assert Instance.objects.get(organization=world.bob.org).sop_uid == "01.2"
    assert Study.objects.filter(organization=world.bob.org).count() == 1


def test_it_refuses_a_uid_with_an_empty_component_everywhere(api: httpx.Client, world: World) -> None:
    for path in ("/studies/1..2", "/studies/1..2/series"):
        assert_problem(api.get(path, headers=world.bob.headers), 400)
    refused = api.get(RECORDS, params={"study": "1..2"}, headers=as_bundle(world))
    assert_problem(refused, 400)
    ingest = api.post(
        "/dicom/stream",
        content=make_instance(sop_uid="1..2"),
        headers={**world.bob.headers, "Content-Type": "application/dicom"},
    )
    assert_problem(ingest, 422)


def test_it_gives_qido_rs_uid_matching_keys_the_same_verdict(api: httpx.Client, world: World) -> None:
    qido = {**world.bob.headers, "Accept": "application/dicom+json"}
    for uid in ("1..2", "1.2.", ".1"):  # no UID: QIDO-RS's own digits-and-dots check took these
        response = api.get("/dicomweb/studies", params={"StudyInstanceUID": uid}, headers=qido)
        assert response.status_code == 400, (uid, response.text)
    accepted = api.get("/dicomweb/studies", params={"StudyInstanceUID": "1.2.03"}, headers=qido)
    assert accepted.status_code in (200, 204), accepted.text
