"""Standard FHIR clients, unmodified, against a live uvicorn with only the Bearer header
configured (issue 13, Must show): SMART's fhirclient and fhirpy (sync and async) read the
CapabilityStatement, search Patients by identifier and name, read a Patient, search its
ImagingStudies with _include, page through 250 studies 100 at a time by `next` links (each
exactly once), run $everything, get a 304 on a conditional read, and a 404 OperationOutcome
for another organization's Patient. Every resource they receive passes the one validity check."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from fhirclient import client as smart_client
from fhirclient.models.bundle import Bundle as SmartBundle
from fhirclient.models.imagingstudy import ImagingStudy as SmartImagingStudy
from fhirclient.models.operationoutcome import OperationOutcome as SmartOutcome
from fhirclient.models.patient import Patient as SmartPatient
from fhirclient.server import FHIRNotFoundException
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.support import live
from tests.support.fhir_assert import assert_fhir_valid
from tests.support.fhir_support import BASE, fhir_server, patient_fhir_id, studies_of_one_patient
from tests.support.records_support import index_study
from tests.support.world import World

__all__ = ["fhir_server"]
STUDIES = 250
SYSTEM = "urn:prizmed:org:acme:patient-id"


@pytest.fixture
def population(world: World) -> dict[str, str]:
    """acme: P250 with 250 studies, P1 (Doe^Jane) with one; globex: G1. The FHIR ids."""
    acme, globex = world.bob.org, world.carol.org
    studies_of_one_patient(acme, STUDIES, patient_id="P250")
    index_study(acme, patient_id="P1", study_uid="1.2.3.1", name="Doe^Jane")
    index_study(globex, patient_id="G1", study_uid="9.9.9.1")
    return {
        "P250": patient_fhir_id(acme, "P250"),
        "P1": patient_fhir_id(acme, "P1"),
        "G1": patient_fhir_id(globex, "G1"),
    }


def test_fhirclient(fhir_server: live.Server, world: World, population: dict[str, str]) -> None:
    smart = smart_client.FHIRClient(settings={"app_id": "prizmed-tests", "api_base": f"{fhir_server.url}{BASE}"})
    server = smart.server
    server.session.headers["Authorization"] = f"Bearer {world.bob.token}"  # the only configuration

    statement = server.capabilityStatement
    assert statement.fhirVersion == "4.0.1"
    assert_fhir_valid(statement.as_json())
    assert {r.type for r in statement.rest[0].resource} >= {"Patient", "ImagingStudy"}

    found = list(SmartPatient.where(struct={"identifier": f"{SYSTEM}|P1"}).perform_resources_iter(server))
    assert [p.id for p in found] == [population["P1"]]
    by_name = list(SmartPatient.where(struct={"name": "doe"}).perform_resources_iter(server))
    assert [p.id for p in by_name] == [population["P1"]]
    patient = SmartPatient.read(population["P1"], server)
    assert patient.name[0].family == "Doe" and patient.meta.versionId
    assert_fhir_valid(patient.as_json())

    search = SmartImagingStudy.where(struct={"patient": population["P1"]}).include("subject")
    bundle = next(search.perform_iter(server))
    assert_fhir_valid(bundle.as_json())
    assert [(e.resource.resource_type, e.search.mode) for e in bundle.entry] == [
        ("ImagingStudy", "match"),
        ("Patient", "include"),
    ]

    pages = list(SmartImagingStudy.where(struct={"patient": population["P250"], "_count": "100"}).perform_iter(server))
    ids = [e.resource.id for page in pages for e in page.entry]
    assert [len(page.entry) for page in pages] == [100, 100, 50]
    assert sorted(ids) == sorted(f"1.2.250.{n}" for n in range(1, STUDIES + 1))  # each exactly once
    for page in pages:
        assert_fhir_valid(page.as_json())

    everything = SmartBundle.read_from(f"Patient/{population['P1']}/$everything", server)
    assert_fhir_valid(everything.as_json())
    assert [e.resource.resource_type for e in everything.entry] == ["Patient", "ImagingStudy"]

    # Conditional read through the client's own server connection: 304, no body.
    response = server.session.get(
        f"{server.base_uri}Patient/{population['P1']}", headers={"If-None-Match": f'W/"{patient.meta.versionId}"'}
    )
    assert response.status_code == 304 and response.content == b""

    with pytest.raises(FHIRNotFoundException) as refused:
        SmartPatient.read(population["G1"], server)
    assert_fhir_valid(refused.value.response.json())
    assert SmartOutcome(refused.value.response.json()).issue[0].code == "not-found"


def _check_fhirpy_results(population: dict[str, str], results: dict[str, Any]) -> None:
    assert results["statement"]["fhirVersion"] == "4.0.1"
    assert [p["id"] for p in results["by_identifier"]] == [population["P1"]]
    assert [p["id"] for p in results["by_name"]] == [population["P1"]]
    assert results["patient"]["name"][0]["family"] == "Doe"
    modes = [(e["resource"]["resourceType"], e["search"]["mode"]) for e in results["included"]["entry"]]
    assert modes == [("ImagingStudy", "match"), ("Patient", "include")]
    ids = [s["id"] for s in results["all_studies"]]
    assert results["count"] == STUDIES  # fhirpy's count(): _count=0 (and its _totalMethod, ignored)
    assert len(ids) == STUDIES and sorted(ids) == sorted(f"1.2.250.{n}" for n in range(1, STUDIES + 1))
    assert [e["resource"]["resourceType"] for e in results["everything"]["entry"]] == ["Patient", "ImagingStudy"]
    assert results["refreshed"]["meta"] == results["patient"]["meta"]  # 304: kept as it was
    outcome = json.loads(results["other_tenant"])
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "not-found"
    for key in ("statement", "patient", "included", "everything"):
        assert_fhir_valid(dict(results[key]))
    for key in ("by_identifier", "by_name", "all_studies"):
        for resource in results[key]:
            assert_fhir_valid(dict(resource))
    assert_fhir_valid(outcome)


def test_fhirpy_sync(fhir_server: live.Server, world: World, population: dict[str, str]) -> None:
    client = SyncFHIRClient(f"{fhir_server.url}{BASE}", authorization=f"Bearer {world.bob.token}")
    results: dict[str, Any] = {"statement": client.execute("metadata", method="get")}
    results["by_identifier"] = client.resources("Patient").search(identifier=f"{SYSTEM}|P1").fetch()
    results["by_name"] = client.resources("Patient").search(name="Jane").fetch()
    patient = client.reference("Patient", population["P1"]).to_resource()
    results["patient"] = patient.serialize()
    studies = client.resources("ImagingStudy").search(patient=population["P1"])
    results["included"] = studies.include("ImagingStudy", "subject").fetch_raw()
    results["all_studies"] = client.resources("ImagingStudy").search(patient=population["P250"]).limit(100).fetch_all()
    results["count"] = client.resources("ImagingStudy").search(patient=population["P250"]).count()
    results["everything"] = client.reference("Patient", population["P1"]).execute("$everything", method="get")
    results["refreshed"] = patient.refresh().serialize()
    with pytest.raises(ResourceNotFound) as refused:
        client.reference("Patient", population["G1"]).to_resource()
    results["other_tenant"] = str(refused.value)
    _check_fhirpy_results(population, results)


def test_fhirpy_async(fhir_server: live.Server, world: World, population: dict[str, str]) -> None:
    async def run() -> dict[str, Any]:
        client = AsyncFHIRClient(f"{fhir_server.url}{BASE}", authorization=f"Bearer {world.bob.token}")
        results: dict[str, Any] = {"statement": await client.execute("metadata", method="get")}
        results["by_identifier"] = await client.resources("Patient").search(identifier=f"{SYSTEM}|P1").fetch()
        results["by_name"] = await client.resources("Patient").search(name="Jane").fetch()
        patient = await client.reference("Patient", population["P1"]).to_resource()
        results["patient"] = patient.serialize()
        studies = client.resources("ImagingStudy").search(patient=population["P1"])
        results["included"] = await studies.include("ImagingStudy", "subject").fetch_raw()
        search = client.resources("ImagingStudy").search(patient=population["P250"]).limit(100)
        results["all_studies"] = await search.fetch_all()
        results["count"] = await client.resources("ImagingStudy").search(patient=population["P250"]).count()
        results["everything"] = await client.reference("Patient", population["P1"]).execute("$everything", method="get")
        results["refreshed"] = (await patient.refresh()).serialize()
        with pytest.raises(ResourceNotFound) as refused:
            await client.reference("Patient", population["G1"]).to_resource()
        results["other_tenant"] = str(refused.value)
        return results

    _check_fhirpy_results(population, asyncio.run(run()))
