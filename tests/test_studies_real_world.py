"""The APIs over real HTTP on real-world values (issue 12): a Person Name found by any of its
component groups, an accession number longer than SH allows and Patient IDs longer than LO
allows found by their whole values, never cut into each other."""

from __future__ import annotations

import uuid

import httpx

from accounts.models import AuditEntry
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.indexing import http_upload, wait_indexed
from tests.support.world import World
from tests.test_index_conformance import person_name_element


def test_it_finds_a_study_by_any_person_name_group_and_by_a_long_accession_number(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    name = person_name_element("\\ISO 2022 IR 87", "Yamada^Hanako=山田^花子=やまだ^はなこ")
    files = [
        make_instance(patient_id="P-JP", accession="RIS-2020-0000001-A", encoded=name),
        make_instance(patient_id="P-X", accession="RIS-2020-0000001-B"),
    ]
    upload = wait_indexed(http_upload(api, world.bob, files))
    assert (upload.instances_indexed, upload.instances_rejected) == (2, 0)

    def found(**params: str) -> list[str]:
        response = api.get("/studies", params=params, headers=world.bob.headers)
        assert response.status_code == 200, response.text
        return [study["patient"]["patient_id"] for study in response.json()["results"]]

    for prefix in ("Yamada", "山田", "やまだ^は"):
        assert found(patient_name=prefix) == ["P-JP"]
    assert found(accession_number="RIS-2020-0000001-A") == ["P-JP"]
    assert found(accession_number="RIS-2020-0000001-B") == ["P-X"]
    assert found(accession_number="RIS-2020-0000001") == []
    [study] = api.get("/studies", params={"patient_id": "P-JP"}, headers=world.bob.headers).json()["results"]
    assert study["patient"]["name"] == "Yamada^Hanako=山田^花子=やまだ^はなこ"
    assert study["accession_number"] == "RIS-2020-0000001-A"


def test_it_keeps_patient_ids_longer_than_lo_allows_whole_in_every_api_and_the_audit_log(
    api: httpx.Client, indexer: live.Process | None, world: World
) -> None:
    # Two IDs that a cut to LO's 64 characters would make one patient.
    long_a, long_b = "MRN-" + "7" * 60 + "-A", "MRN-" + "7" * 60 + "-B"
    files = [make_instance(patient_id=long_a), make_instance(patient_id=long_b)]
    upload_id = http_upload(api, world.alice, files)
    upload = wait_indexed(upload_id)
    assert (upload.instances_indexed, upload.instances_rejected) == (2, 0)
    status = api.get(f"/dicom/uploads/{upload_id}", headers=world.alice.headers).json()
    assert [[w["code"] for w in i["warnings"]] for i in status["instances"]] == [["value-too-long"]] * 2

    for patient_id in (long_a, long_b):
        found = api.get("/studies", params={"patient_id": patient_id}, headers=world.alice.headers)
        [study] = found.json()["results"]
        assert study["patient"]["patient_id"] == patient_id
        bundle = api.get("/fhir/Patient", params={"identifier": patient_id}, headers=world.alice.headers).json()
        assert [e["resource"]["identifier"][0]["value"] for e in bundle.get("entry", [])] == [patient_id]
    stream = api.get(
        "/records/stream",
        params={"patient": long_a},
        headers={**world.alice.headers, "Accept": "application/fhir+json"},
    )
    assert stream.status_code == 200, stream.text
    patients = [e["resource"] for e in stream.json()["entry"] if e["resource"]["resourceType"] == "Patient"]
    assert [p["identifier"][0]["value"] for p in patients] == [long_a]

    request_id = str(uuid.uuid4())
    response = api.delete(f"/studies/{study['study_uid']}", headers={**world.alice.headers, "X-Request-Id": request_id})
    assert response.status_code == 200, response.text
    assert response.json()["patient_id"] == long_b
    assert AuditEntry.objects.get(request_id=request_id).patient_id == long_b
