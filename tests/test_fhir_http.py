"""The FHIR REST API over plain HTTP (API.md §8): CapabilityStatement, read with ETag/304/410,
search and its refusals, OperationOutcome errors, content negotiation, AuditEvent for admins.
Every resource returned is checked by the one validity helper (tests/support/fhir_assert.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Plan
from fhir_rest.capabilities import RESOURCES
from fhir_rest.routes import ROUTES
from studies.index.record_events import record_study_changed
from studies.models import Study
from tests.support import live
from tests.support.fhir_assert import assert_fhir_valid
from tests.support.fhir_support import BASE, fhir_server, patient_fhir_id
from tests.support.records_support import delete_study, index_study, rename_patient
from tests.support.world import Clock, World

__all__ = ["fhir_server"]


def get(server: live.Server, path: str, headers: dict[str, str], **params: Any) -> httpx.Response:
    """GET under the FHIR base; whatever resource it answers with must validate."""
    response = httpx.get(f"{server.url}{BASE}/{path}", headers=headers, params=params, timeout=30)
    if response.content:
        assert_fhir_valid(response.json())
    return response


def outcome(response: httpx.Response, status: int, code: str) -> str:
    """The OperationOutcome of a refusal: its status, media type, issue code; its text."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
    parsed = assert_fhir_valid(response.json())
    assert parsed.__resource_type__ == "OperationOutcome"
    assert [issue.code for issue in parsed.issue] == [code]
    return str(parsed.issue[0].details.text)


def test_it_states_exactly_what_it_serves(fhir_server: live.Server, world: World) -> None:
    response = get(fhir_server, "metadata", world.bob.headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
    statement = assert_fhir_valid(response.json())
    assert statement.fhirVersion == "4.0.1" and statement.format == ["json", "application/fhir+json"]
    assert statement.implementation.url == f"{fhir_server.url}{BASE}"  # the request's own host and port
    declared = {r.type: r for r in statement.rest[0].resource}
    assert set(declared) == {"Patient", "ImagingStudy", "Endpoint", "AuditEvent"}
    # Every declared interaction has a route, and every route a declared interaction.
    routed = {(route.resource, route.kind) for route in ROUTES if route.resource}
    stated = {
        (t, {"read": "read", "search-type": "search"}[i.code]) for t, r in declared.items() for i in r.interaction
    }
    stated |= {(t, "operation") for t, r in declared.items() for _ in r.operation or []}
    assert routed == stated
    for name, resource in RESOURCES.items():
        assert [p.name for p in declared[name].searchParam or []] == list(resource.search_params)
    assert declared["ImagingStudy"].searchInclude == ["ImagingStudy:subject", "ImagingStudy:patient"]
    assert declared["Patient"].operation[0].name == "everything"


def test_it_reads_with_version_etag_and_304(fhir_server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    pid = patient_fhir_id(acme, "P1")
    response = get(fhir_server, f"Patient/{pid}", world.bob.headers)
    assert response.status_code == 200, response.text
    patient = assert_fhir_valid(response.json())
    assert patient.meta.versionId == "1" and response.headers["etag"] == 'W/"1"'
    assert response.headers["last-modified"].endswith(" GMT")
    assert response.headers["cache-control"] == "no-store"
    again = get(fhir_server, f"Patient/{pid}", {**world.bob.headers, "If-None-Match": 'W/"1"'})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == 'W/"1"'

    rename_patient(acme, "P1", "Roe^Jane")  # event 3: a new version
    changed = get(fhir_server, f"Patient/{pid}", {**world.bob.headers, "If-None-Match": 'W/"1"'})
    assert changed.status_code == 200 and changed.json()["meta"]["versionId"] == "3"
    assert changed.json()["name"][0]["family"] == "Roe"
    # The search index follows the new version, and forgets the old one.
    found = [get(fhir_server, "Patient", world.bob.headers, family=f).json().get("total") for f in ("Roe", "Doe")]
    assert found == [1, 0]

    study = get(fhir_server, "ImagingStudy/1.2.3.1", world.bob.headers)
    parsed = assert_fhir_valid(study.json())
    assert parsed.meta.versionId == "2" and parsed.subject.reference == f"Patient/{pid}"
    assert parsed.contained[0].address == f"{fhir_server.url}/api/v2/dicomweb"
    endpoint = assert_fhir_valid(get(fhir_server, "Endpoint/dicomweb", world.bob.headers).json())
    assert endpoint.address == f"{fhir_server.url}/api/v2/dicomweb" and endpoint.connectionType.code == "dicom-wado-rs"


def test_it_answers_410_for_a_deleted_study_and_404_for_another_tenants(fhir_server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    index_study(world.carol.org, patient_id="G1", study_uid="9.9.9.1")
    delete_study(acme, "1.2.3.1")
    outcome(get(fhir_server, "ImagingStudy/1.2.3.1", world.bob.headers), 410, "deleted")
    outcome(get(fhir_server, "ImagingStudy/9.9.9.1", world.bob.headers), 404, "not-found")
    outcome(get(fhir_server, f"Patient/{patient_fhir_id(world.carol.org, 'G1')}", world.bob.headers), 404, "not-found")
    outcome(get(fhir_server, "Endpoint/other", world.bob.headers), 404, "not-found")
    outcome(get(fhir_server, "Observation/1", world.bob.headers), 404, "not-found")


def test_it_refuses_as_operation_outcomes(fhir_server: live.Server, world: World) -> None:
    headers = world.bob.headers
    outcome(get(fhir_server, "Patient", {}), 401, "security")
    outcome(get(fhir_server, "Patient", {"Authorization": "Bearer pzm_nope"}), 401, "security")
    text = outcome(get(fhir_server, "Patient", headers, colour="blue"), 400, "invalid")
    assert "colour" in text
    outcome(get(fhir_server, "Patient", headers, birthdate="yesterday"), 400, "invalid")
    outcome(get(fhir_server, "Patient", headers, **{"name:contains": "x"}), 400, "not-supported")
    outcome(get(fhir_server, "Patient", headers, _include="ImagingStudy:subject"), 400, "not-supported")
    outcome(get(fhir_server, "Patient", headers, _summary="text"), 400, "not-supported")
    outcome(get(fhir_server, "Patient", headers, _count="-1"), 400, "invalid")
    outcome(get(fhir_server, "Patient", headers, _format="xml"), 406, "not-supported")
    outcome(get(fhir_server, "Patient", {**headers, "Accept": "application/fhir+xml"}), 406, "not-supported")
    assert get(fhir_server, "Patient", headers, _format="json").status_code == 200
    assert get(fhir_server, "Patient", {**headers, "Accept": "application/fhir+json"}).status_code == 200
    response = httpx.delete(f"{fhir_server.url}{BASE}/Patient/x", headers=headers)
    outcome(response, 405, "not-supported")
    outcome(get(fhir_server, "AuditEvent", headers), 403, "forbidden")


def test_it_searches_with_includes_summary_and_elements(fhir_server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1", name="Doe^Jane", modality="CT")
    index_study(acme, patient_id="P1", study_uid="1.2.3.2", name="Doe^Jane", modality="MR")
    index_study(acme, patient_id="P2", study_uid="1.2.3.3", name="Müller^Jürgen", modality="CT")
    pid = patient_fhir_id(acme, "P1")
    headers = world.bob.headers

    def search(path: str, **params: Any) -> dict[str, Any]:
        response = get(fhir_server, path, headers, **params)
        assert response.status_code == 200, response.text
        assert_fhir_valid(response.json())
        return dict(response.json())

    def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
        return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]

    assert ids(search("Patient", name="mull")) == [patient_fhir_id(acme, "P2")]  # accents and case folded
    assert ids(search("Patient", identifier="urn:prizmed:org:acme:patient-id|P1")) == [pid]
    assert ids(search("Patient", identifier="P2", gender="female")) == [patient_fhir_id(acme, "P2")]
    assert ids(search("Patient", birthdate="ge1980-01-02")) != [] and ids(search("Patient", birthdate="lt1980")) == []
    bundle = search("ImagingStudy", patient=pid, _include="ImagingStudy:subject")
    assert ids(bundle) == ["1.2.3.1", "1.2.3.2"] and ids(bundle, "include") == [pid] and bundle["total"] == 2
    assert ids(search("ImagingStudy", modality="http://dicom.nema.org/resources/ontology/DCM|MR")) == ["1.2.3.2"]
    assert ids(search("ImagingStudy", identifier="urn:oid:1.2.3.3")) == ["1.2.3.3"]
    assert ids(search("ImagingStudy", identifier="ACC1", started="2024-01-02")) == ["1.2.3.1", "1.2.3.2", "1.2.3.3"]
    assert ids(search("ImagingStudy", status="available", modality="CT,MR", subject=f"Patient/{pid}")) == [
        "1.2.3.1",
        "1.2.3.2",
    ]
    rev = search("Patient", _id=pid, _revinclude="ImagingStudy:subject")
    assert ids(rev) == [pid] and ids(rev, "include") == ["1.2.3.1", "1.2.3.2"]
    assert len(ids(search("ImagingStudy", _lastUpdated="gt2000-01-01T00:00:00Z"))) == 3
    assert ids(search("ImagingStudy", _lastUpdated="lt2000")) == []
    counted = search("ImagingStudy", _summary="count")
    assert counted["total"] == 3 and "entry" not in counted
    cut = search("ImagingStudy", _elements="identifier", _id="1.2.3.1")["entry"][0]["resource"]
    assert set(cut) == {"resourceType", "id", "meta", "identifier", "status", "subject"}
    assert cut["meta"]["tag"][0]["code"] == "SUBSETTED"
    posted = httpx.post(f"{fhir_server.url}{BASE}/ImagingStudy/_search", data={"modality": "MR"}, headers=headers)
    assert posted.status_code == 200
    assert_fhir_valid(posted.json())
    assert ids(posted.json()) == ["1.2.3.2"]
    assert posted.json()["link"][0]["url"] == f"{fhir_server.url}{BASE}/ImagingStudy?modality=MR"


def test_it_searches_audit_events_for_admins(fhir_server: live.Server, world: World) -> None:
    acme = world.alice.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    deleted = httpx.delete(f"{fhir_server.url}/api/v2/studies/1.2.3.1", headers=world.alice.headers, timeout=30)
    assert deleted.status_code in (200, 204), deleted.text
    response = get(fhir_server, "AuditEvent", world.alice.headers, entity="urn:oid:1.2.3.1", outcome="0")
    assert response.status_code == 200, response.text
    bundle = assert_fhir_valid(response.json())
    assert bundle.total == 1 and bundle.entry[0].resource.subtype[0].code == "study.delete"
    for params in ({"type": "110105"}, {"subtype": "study.delete"}, {"action": "D"}, {"date": "ge2000"}):
        assert get(fhir_server, "AuditEvent", world.alice.headers, **params).json()["total"] == 1
    for params in ({"type": "110100"}, {"outcome": "4"}, {"entity": "urn:oid:9.9"}, {"date": "lt2000"}):
        assert get(fhir_server, "AuditEvent", world.alice.headers, **params).json()["total"] == 0


@pytest.mark.parametrize("count", [1, 2])
def test_it_pages_everything(fhir_server: live.Server, world: World, count: int) -> None:
    acme = world.bob.org
    for n in range(1, 4):
        index_study(acme, patient_id="P1", study_uid=f"1.2.3.{n}")
    index_study(acme, patient_id="P2", study_uid="1.2.3.9")  # another patient's
    pid = patient_fhir_id(acme, "P1")
    url: str | None = f"{fhir_server.url}{BASE}/Patient/{pid}/$everything?_count={count}"
    seen = []
    while url is not None:
        response = httpx.get(url, headers=world.bob.headers)
        assert response.status_code == 200, response.text
        bundle = assert_fhir_valid(response.json())
        assert bundle.total == 4
        seen += [(e.resource.__resource_type__, e.resource.id) for e in bundle.entry or []]
        url = next((str(link.url) for link in bundle.link if link.relation == "next"), None)
    assert seen == [
        ("Patient", pid),
        ("ImagingStudy", "1.2.3.1"),
        ("ImagingStudy", "1.2.3.2"),
        ("ImagingStudy", "1.2.3.3"),
    ]


def test_it_throttles_as_an_operation_outcome(fhir_server: live.Server, world: World, clock: Clock) -> None:
    acme = world.bob.org
    acme.plan = Plan.objects.create(name="Tiny", slug="tiny", requests_per_minute=1)
    acme.save()
    assert get(fhir_server, "metadata", world.bob.headers).status_code == 200
    refused = get(fhir_server, "metadata", world.bob.headers)
    outcome(refused, 429, "throttled")
    assert int(refused.headers["retry-after"]) > 0 and refused.headers["x-ratelimit-remaining"] == "0"


def test_everything_since_returns_only_what_changed(fhir_server: live.Server, world: World) -> None:
    acme = world.bob.org
    for n in range(1, 4):
        index_study(acme, patient_id="P1", study_uid=f"1.2.3.{n}")
    since = timezone.now()
    with transaction.atomic():
        record_study_changed(study=Study.objects.get(organization=acme, study_uid="1.2.3.2"))
    pid = patient_fhir_id(acme, "P1")
    response = get(fhir_server, f"Patient/{pid}/$everything", world.bob.headers, _since=since.isoformat())
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 1
    assert [e["resource"]["id"] for e in response.json()["entry"]] == ["1.2.3.2"]
    outcome(get(fhir_server, f"Patient/{pid}/$everything", world.bob.headers, _type="Patient"), 400, "invalid")
    outcome(get(fhir_server, f"Patient/{'0' * 32}/$everything", world.bob.headers), 404, "not-found")
