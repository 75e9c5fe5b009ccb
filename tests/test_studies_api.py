"""`GET /studies`, `GET /studies/{uid}` and `GET /studies/{uid}/series` over real HTTP."""

from __future__ import annotations

import httpx
from django.db import connection
from django.test.utils import CaptureQueriesContext

from studies.models import Series, Study
from tests.support import dicomfactory as dcm
from tests.support.indexing import index_now, stored_upload
from tests.support.world import World


def indexed_study(org, **kw) -> Study:  # type: ignore[no-untyped-def]
    instances = dcm.make_study(**{"n_series": 2, "per_series": 3, **kw})
    upload = index_now(stored_upload(org, instances))
    return Study.objects.get(organization=org, study_uid=upload.study_uids[0])


def test_it_shows_a_studys_metadata_and_links(api: httpx.Client, world: World) -> None:
    study = indexed_study(
        world.alice.org, patient_id="P-9", patient_name="Doe^John", accession="ACC-9",
        study_description="Chest CT", StudyTime="101500", ReferringPhysicianName="Who^Doctor",
    )  # fmt: skip
    response = api.get(f"/studies/{study.study_uid}", headers=world.bob.headers)

    assert response.status_code == 200
    body = response.json()
    uid = study.study_uid
    assert body == {
        "study_uid": uid,
        "patient": {"patient_id": "P-9", "name": "Doe^John", "birth_date": "1980-01-01", "sex": "F"},
        "study_date": "2024-01-02",
        "study_time": "10:15:00",
        "timezone_offset": "",
        "accession_number": "ACC-9",
        "description": "Chest CT",
        "referring_physician": "Who^Doctor",
        "modalities": ["CT"],
        "series_count": 2,
        "instance_count": 6,
        "bytes": study.bytes,
        "first_received": body["first_received"],
        "last_received": body["last_received"],
        "links": {
            "self": {"href": f"/api/v2/studies/{uid}"},
            "series": {"href": f"/api/v2/studies/{uid}/series"},
            "fhir": {"href": f"/api/v2/records/stream?study={uid}", "type": "application/fhir+json"},
            "retrieval": {"href": f"/api/v2/studies/{uid}/series"},
        },
    }
    assert study.bytes > 6 * 1024
    assert study.first_received <= study.last_received
    assert body["first_received"] <= body["last_received"]  # ISO 8601 in UTC: text order is time order


def test_it_lists_series_with_storage_uris_never_paths(api: httpx.Client, world: World) -> None:
    study = indexed_study(world.alice.org, series_description="Axial", body_part="HEAD")
    response = api.get(f"/studies/{study.study_uid}/series", headers=world.bob.headers)

    assert response.status_code == 200
    body = response.json()
    assert body["study_uid"] == study.study_uid
    rows = Series.objects.filter(study=study).order_by("number")
    assert [s["series_uid"] for s in body["series"]] == [s.series_uid for s in rows]
    for got, row in zip(body["series"], rows, strict=True):
        assert got["number"] == row.number and got["modality"] == "CT" and got["description"] == "Axial"
        assert got["body_part"] == "HEAD" and got["instance_count"] == 3 and got["bytes"] == row.bytes
        assert got["storage_location"] == f"file://prizmed/{row.storage_prefix}"
        assert "/var/" not in got["storage_location"] and "/tmp/" not in got["storage_location"]


def test_it_refuses_a_malformed_uid_with_400(api: httpx.Client, world: World) -> None:
    # "1.2.03" is accepted since the one UID rule (tests/test_uid_rule.py: 404 when unknown).
    for bad in ("abc", "1." + "2" * 70, "1..2", "1.2."):
        for path in (f"/studies/{bad}", f"/studies/{bad}/series"):
            response = api.get(path, headers=world.bob.headers)
            assert response.status_code == 400, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"


def test_it_answers_404_for_unknown_and_other_tenants_studies(api: httpx.Client, world: World) -> None:
    study = indexed_study(world.alice.org)
    for path in (f"/studies/{study.study_uid}", f"/studies/{study.study_uid}/series", "/studies/1.2.3.4"):
        assert api.get(path, headers=world.carol.headers).status_code == 404
    assert api.get("/studies", headers=world.carol.headers).json()["results"] == []


def test_it_searches_by_patient_name_modality_date_and_accession(api: httpx.Client, world: World) -> None:
    acme = world.alice.org
    a = indexed_study(acme, patient_id="A", patient_name="Smith^Ann", modality="MR", study_date="20240110",
                      accession="X1")  # fmt: skip
    b = indexed_study(acme, patient_id="B", patient_name="Smythe^Bo", modality="CT", study_date="20240220",
                      accession="X2")  # fmt: skip
    c = indexed_study(acme, patient_id="C", patient_name="Jones^Cy", modality="CT", study_date="20240305",
                      accession="X3")  # fmt: skip
    indexed_study(world.carol.org, patient_id="A", patient_name="Smith^Ann", modality="MR")

    def uids(**params: str) -> list[str]:
        response = api.get("/studies", params=params, headers=world.bob.headers)
        assert response.status_code == 200, response.text
        return [s["study_uid"] for s in response.json()["results"]]

    assert uids() == [c.study_uid, b.study_uid, a.study_uid]  # newest first
    assert uids(patient_id="A") == [a.study_uid]
    assert uids(patient_name="Sm") == [b.study_uid, a.study_uid]
    assert uids(modality="CT") == [c.study_uid, b.study_uid]
    assert uids(date_from="2024-02-01") == [c.study_uid, b.study_uid]
    assert uids(date_from="2024-02-01", date_to="2024-02-29") == [b.study_uid]
    assert uids(accession_number="X3") == [c.study_uid]
    assert api.get("/studies", params={"date_from": "yesterday"}, headers=world.bob.headers).status_code == 400


def test_it_pages_with_a_stable_cursor(api: httpx.Client, world: World) -> None:
    acme = world.alice.org
    made = [indexed_study(acme, n_series=1, per_series=1) for _ in range(5)]
    first = api.get("/studies", params={"limit": 2}, headers=world.bob.headers).json()
    assert [s["study_uid"] for s in first["results"]] == [made[4].study_uid, made[3].study_uid]
    indexed_study(acme, n_series=1, per_series=1)  # a new study arrives between pages
    seen = [s["study_uid"] for s in first["results"]]
    page = first
    while page["next"]:
        page = httpx.get(page["next"], headers=world.bob.headers).json()
        seen += [s["study_uid"] for s in page["results"]]
    assert seen == [s.study_uid for s in reversed(made)]  # nothing skipped, nothing twice
    bad = api.get("/studies", params={"cursor": "garbage"}, headers=world.bob.headers)
    assert bad.status_code == 400


def test_it_reads_a_study_and_its_series_in_a_fixed_number_of_queries(world: World) -> None:
    from studies.selectors import series_list, study_get

    small = indexed_study(world.alice.org, n_series=1, per_series=1)
    big = indexed_study(world.alice.org, n_series=6, per_series=5)
    counts = []
    for study in (small, big):
        with CaptureQueriesContext(connection) as queries:
            found = study_get(organization=world.alice.org, study_uid=study.study_uid)
            assert found is not None
            list(series_list(study=found))
            assert found.patient.patient_id
        counts.append(len(queries))
    assert counts == [2, 2]
