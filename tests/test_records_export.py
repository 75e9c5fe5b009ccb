"""GET /records/stream as a FHIR searchset Bundle (paged) and as NDJSON, validated with fhir.resources."""

from __future__ import annotations

import json

import httpx

from records.models import RecordResource
from tests.support import live
from tests.support.records_support import delete_study, index_study, rename_patient, stream_timeout, validate
from tests.support.world import World

PATH = "/api/v2/records/stream"


def test_it_pages_a_searchset_bundle_with_next_links(server: live.Server, world: World) -> None:
    acme = world.bob.org
    for n in range(1, 4):
        index_study(acme, patient_id=f"P{n}", study_uid=f"1.2.3.{n}", series=2, instances=3)
    index_study(world.carol.org, patient_id="G1", study_uid="9.9.9.1")  # another tenant: never listed
    headers = {**world.bob.headers, "Accept": "application/fhir+json"}
    url: str | None = f"{server.url}{PATH}?_count=4"
    resources, pages = [], 0
    while url is not None:
        response = httpx.get(url, headers=headers)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/fhir+json"
        assert response.headers["x-record-seq"] == "6"
        bundle = validate(response.json())
        assert bundle.type == "searchset" and bundle.total == 6
        resources += [entry["resource"] for entry in response.json()["entry"]]
        links = {link["relation"]: link["url"] for link in response.json()["link"]}
        # Links are absolute and follow the request's own host (PRIZMED_PUBLIC_URL is unset).
        assert links["self"].startswith(f"{server.url}/api/v2/records/stream?")
        url = links.get("next")
        pages += 1
    assert pages == 2
    assert sorted(r["resourceType"] for r in resources) == ["ImagingStudy"] * 3 + ["Patient"] * 3
    studies = {r["id"]: validate(r) for r in resources if r["resourceType"] == "ImagingStudy"}
    assert set(studies) == {"1.2.3.1", "1.2.3.2", "1.2.3.3"}
    study = studies["1.2.3.2"]
    assert (study.numberOfSeries, study.numberOfInstances, len(study.series)) == (2, 6, 2)
    assert [i.uid for i in study.series[1].instance] == ["1.2.3.2.2.1", "1.2.3.2.2.2", "1.2.3.2.2.3"]
    assert study.series[0].instance[0].sopClass.code == "urn:oid:1.2.840.10008.5.1.4.1.1.2"
    assert study.contained[0].address == "/api/v2/dicomweb"  # the WADO-RS base, same origin (no public URL set)
    assert study.endpoint[0].reference == "#wado"


def test_it_filters_a_bundle_by_since_patient_and_study(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")  # seq 1, 2
    index_study(acme, patient_id="P2", study_uid="1.2.3.2")  # seq 3, 4
    rename_patient(acme, "P1", "Doe^Janet")  # seq 5
    headers = {**world.bob.headers, "Accept": "application/fhir+json"}

    def ids(**params: str) -> list[str]:
        body = httpx.get(f"{server.url}{PATH}", headers=headers, params=params).json()
        return sorted(e["resource"]["resourceType"] + "/" + e["resource"]["id"] for e in body.get("entry", []))

    assert ids(since="4") == [f"Patient/{RecordResource.objects.get(key='P1').resource['id']}"]
    assert ids(study="1.2.3.2") == ["ImagingStudy/1.2.3.2"]
    assert len(ids(patient="P2")) == 2
    delete_study(acme, "1.2.3.2")
    assert ids(study="1.2.3.2") == []


def test_it_streams_every_resource_as_ndjson(server: live.Server, world: World) -> None:
    acme = world.bob.org
    count = 30
    for n in range(count):
        index_study(acme, patient_id=f"P{n}", study_uid=f"1.2.3.{n}")
    index_study(world.carol.org, patient_id="G1", study_uid="9.9.9.1")
    headers = {**world.bob.headers, "Accept": "application/fhir+ndjson"}
    with httpx.stream("GET", f"{server.url}{PATH}", headers=headers, timeout=stream_timeout()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/fhir+ndjson"
        assert response.headers["x-record-seq"] == str(2 * count)
        assert "content-length" not in response.headers  # streamed, not buffered
        lines = list(response.iter_lines())
    resources = [json.loads(line) for line in lines if line]
    assert len(resources) == 2 * count
    for resource in resources:
        validate(resource)
    assert {r["id"] for r in resources if r["resourceType"] == "ImagingStudy"} == {f"1.2.3.{n}" for n in range(count)}
    stored = {(r.kind, r.resource["id"]) for r in RecordResource.objects.filter(organization=acme)}
    assert {(r["resourceType"], r["id"]) for r in resources} == stored
