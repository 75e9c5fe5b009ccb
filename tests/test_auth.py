"""Deny matrix: every API route × every way to be refused, over real HTTP against uvicorn.

ROUTES must name every operation in the OpenAPI schema (test_it_covers_every_route), so a new
endpoint cannot ship without its row here.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from django.db import transaction

from accounts.keys import PRODUCT_PREFIX
from accounts.models import Role
from accounts.services import key_issue
from dicomweb.routes import ROUTES as DICOMWEB_ROUTES
from fhir_rest.capabilities import RESOURCES as FHIR_RESOURCES
from fhir_rest.routes import ROUTES as FHIR_ROUTES
from studies.index.record_events import record_patient_changed, record_study_changed
from studies.models import Chunk, Instance, Patient, Series, Stream, Study, Upload
from tests.support.fhir_assert import assert_fhir_valid
from tests.support.world import World


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # with the placeholders of the schema path filled in
    admin_only: bool = False
    tenant_resource: bool = False  # names a resource of acme: another tenant must get 404


# Each later feature adds its rows; `setup` fixtures create the acme resources they name.
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/v2/organization"): Route("GET", "/organization"),
}

UNKNOWN_KEY = PRODUCT_PREFIX + "A" * 32 + "000000"

# acme's resources that tenant_resource routes name in their paths.
STUDY_UID = "1.2.826.0.1.3680043.10.511.1"
UPLOAD_ID = "6c1d1f7e-4a57-4a8e-9f3c-2b9d6c1e5a10"
STREAM_ID = "acme-stream-1"

# Streaming DICOM ingest (issue 3).
ROUTES |= {
    ("POST", "/api/v2/dicom/stream"): Route("POST", "/dicom/stream"),
    ("GET", "/api/v2/dicom/uploads/{request_id}"): Route("GET", f"/dicom/uploads/{UPLOAD_ID}", tenant_resource=True),
    ("GET", "/api/v2/dicom/streams/{stream_id}"): Route("GET", f"/dicom/streams/{STREAM_ID}", tenant_resource=True),
    ("DELETE", "/api/v2/dicom/streams/{stream_id}"): Route(
        "DELETE", f"/dicom/streams/{STREAM_ID}", tenant_resource=True
    ),
}

# Index, studies, delete and audit log (issue 4).
ROUTES |= {
    ("GET", "/api/v2/studies"): Route("GET", "/studies"),
    ("GET", "/api/v2/studies/{study_uid}"): Route("GET", f"/studies/{STUDY_UID}", tenant_resource=True),
    ("DELETE", "/api/v2/studies/{study_uid}"): Route(
        "DELETE", f"/studies/{STUDY_UID}", admin_only=True, tenant_resource=True
    ),
    ("GET", "/api/v2/studies/{study_uid}/series"): Route("GET", f"/studies/{STUDY_UID}/series", tenant_resource=True),
    ("GET", "/api/v2/audit-events"): Route("GET", "/audit-events", admin_only=True),
}

# Patient records: Bundle, NDJSON and SSE (issue 5).
ROUTES |= {
    ("GET", "/api/v2/records/stream"): Route("GET", "/records/stream"),
}


# DICOMweb (issue 11): every resource of its route table, acme's study in each path. Storing to a
# named study is no lookup (another tenant stores its own study of that UID), so not a 404.
_DICOMWEB_FILL = {"study": STUDY_UID, "series": f"{STUDY_UID}.1", "instance": f"{STUDY_UID}.1.1", "frames": "1",
                  "path": "7FE00010"}  # fmt: skip
ROUTES |= {
    (r.method, "/api/v2/dicomweb" + r.template): Route(
        r.method,
        "/dicomweb" + r.template.format(**_DICOMWEB_FILL),
        tenant_resource="{study}" in r.template and r.method == "GET",
    )
    for r in DICOMWEB_ROUTES
}

# FHIR REST (issue 13): every route of its table; refusals there are OperationOutcomes
# (assert_problem). ImagingStudy/{id} names acme's study; the Patient ids are hashes, not named.
ROUTES |= {
    (r.method, "/api/v2/fhir" + r.template): Route(
        r.method,
        "/fhir" + r.template.format(id=STUDY_UID if r.resource == "ImagingStudy" else "0" * 32),
        admin_only=FHIR_RESOURCES[r.resource].admin_only if r.resource else False,
        tenant_resource=r.resource == "ImagingStudy" and r.kind == "read",
    )
    for r in FHIR_ROUTES
}


@pytest.fixture
def acme_resources(world: World) -> None:
    acme = world.alice.org
    patient = Patient.objects.create(organization=acme, patient_id="ACME-1", name="Doe^Jane")
    study = Study.objects.create(organization=acme, patient=patient, study_uid=STUDY_UID, series_count=1,
                                 instance_count=1, bytes=10, modalities=["CT"])  # fmt: skip
    series = Series.objects.create(study=study, series_uid=f"{STUDY_UID}.1", modality="CT", instance_count=1, bytes=10)
    Instance.objects.create(organization=acme, series=series, sop_uid=f"{STUDY_UID}.1.1", sop_class_uid="1.2",
                            transfer_syntax_uid="1.2.840.10008.1.2.1", object_key="missing/object", size=10,
                            sha256="0" * 64)  # fmt: skip
    with transaction.atomic():  # their FHIR resources, as the indexer writes them (FHIR routes)
        record_patient_changed(patient=patient)
        record_study_changed(study=study)
    upload = Upload.objects.create(id=UPLOAD_ID, organization=acme, content_type="application/dicom")
    stream = Stream.objects.create(organization=acme, stream_id=STREAM_ID, content_type="application/dicom")
    Chunk.objects.create(stream=stream, seq=0, size=1, sha256="0" * 64, object_key="missing/chunk")
    assert upload.pk


def bad_headers(world: World) -> dict[str, dict[str, str]]:
    return {
        "no key": {},
        "not bearer": {"Authorization": f"Basic {world.bob.token}"},
        "malformed": {"Authorization": "Bearer not-a-key"},
        "bad checksum": {"Authorization": f"Bearer {world.bob.token[:-1]}{'A' if world.bob.token[-1] != 'A' else 'B'}"},
        "unknown": {"Authorization": f"Bearer {UNKNOWN_KEY}"},
        "revoked": world.revoked.headers,
        "expired": world.expired.headers,
    }


def routes() -> list[Route]:
    return list(ROUTES.values())


def send(api: httpx.Client, route: Route, headers: dict[str, str], **kw: object) -> httpx.Response:
    return api.request(route.method, route.path, headers=headers, **kw)  # type: ignore[arg-type]


def refusal_text(response: httpx.Response) -> tuple[str, str]:
    """What a refusal says: the problem's title and detail, or the OperationOutcome's issue."""
    body = response.json()
    if body.get("resourceType") == "OperationOutcome":
        return body["issue"][0]["code"], body["issue"][0]["details"]["text"]
    return body["title"], body["detail"]


def assert_problem(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    if response.request.url.path.startswith("/api/v2/fhir/"):  # FHIR clients read OperationOutcome
        assert response.headers["content-type"] == "application/fhir+json; fhirVersion=4.0"
        outcome = assert_fhir_valid(response.json())
        assert outcome.__resource_type__ == "OperationOutcome"
        assert response.headers["x-request-id"] in outcome.issue[0].diagnostics
        return
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]


def test_it_covers_every_route(server) -> None:
    schema = httpx.get(f"{server.url}/api/schema/?format=json").json()
    operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m != "parameters"}
    assert operations == set(ROUTES)


@pytest.mark.parametrize("route", routes(), ids=lambda r: f"{r.method} {r.path}")
def test_it_refuses_every_bad_key_with_the_same_401(api: httpx.Client, world: World, route: Route) -> None:
    bodies = set()
    for case, headers in bad_headers(world).items():
        response = send(api, route, headers)
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer", case
        bodies.add(refusal_text(response))
    assert len(bodies) == 1  # the body never says which check failed


@pytest.mark.parametrize("route", routes(), ids=lambda r: f"{r.method} {r.path}")
def test_it_refuses_a_key_in_the_query_string(api: httpx.Client, world: World, route: Route) -> None:
    assert_problem(send(api, route, {}, params={"api_key": world.alice.token}), 401)
    assert_problem(send(api, route, world.alice.headers, params={"key": world.alice.token}), 401)


def test_it_accepts_a_valid_key_and_records_last_use(api: httpx.Client, world: World) -> None:
    response = api.get("/organization", headers=world.bob.headers)
    assert response.status_code == 200
    assert response.json() == {
        "slug": "acme",
        "name": "Acme Hospital",
        "plan": {"name": "Professional", "requests_per_minute": 600, "bandwidth_bps": 100_000_000,
                 "max_study_bytes": 4_000_000_000},
        "key": {"prefix": world.bob.key.prefix, "name": "bob", "role": "standard", "expires_at": None},
    }  # fmt: skip
    world.bob.key.refresh_from_db()
    first_use = world.bob.key.last_used
    assert first_use is not None
    api.get("/organization", headers=world.bob.headers)
    world.bob.key.refresh_from_db()
    assert world.bob.key.last_used == first_use  # not rewritten within the minute


@pytest.mark.parametrize("route", [r for r in routes() if r.admin_only], ids=lambda r: f"{r.method} {r.path}")
def test_it_refuses_a_standard_key_on_admin_routes(
    api: httpx.Client, world: World, acme_resources: None, route: Route
) -> None:
    assert_problem(send(api, route, world.bob.headers), 403)


@pytest.mark.parametrize("route", [r for r in routes() if r.tenant_resource], ids=lambda r: f"{r.method} {r.path}")
def test_it_hides_another_tenants_resources(
    api: httpx.Client, world: World, acme_resources: None, route: Route
) -> None:
    headers = world.carol.headers
    if route.admin_only:  # an admin of globex: the role passes, the resource still does not exist
        _, token = key_issue(organization=world.carol.org, name="carol-admin", role=Role.ADMIN)
        headers = {"Authorization": f"Bearer {token}"}
    assert_problem(send(api, route, headers), 404)
