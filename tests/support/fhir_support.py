"""FHIR API test helpers: a uvicorn server with no PRIZMED_PUBLIC_URL (so every link is built
from the request's own host and port, which the clients must follow), and the population."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts.models import Organization
from records.models import RecordResource
from tests.support import live
from tests.support.records_support import index_study

BASE = "/api/v2/fhir"


@pytest.fixture(scope="session")
def fhir_server(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    srv = live.server({**child_env, "PRIZMED_PUBLIC_URL": ""}, run_dir)
    yield srv
    srv.stop()


def patient_fhir_id(org: Organization, patient_id: str) -> str:
    """The FHIR id of the Patient the record log holds for a DICOM Patient ID."""
    row = RecordResource.objects.get(organization=org, kind="Patient", key=patient_id)
    return str(row.resource["id"])


def studies_of_one_patient(
    org: Organization, count: int, *, patient_id: str = "P250", prefix: str = "1.2.250", name: str = "Roe^Richard"
) -> None:
    """``count`` one-series studies of one patient (UIDs ``<prefix>.<n>``)."""
    for n in range(1, count + 1):
        index_study(org, patient_id=patient_id, study_uid=f"{prefix}.{n}", instances=1, name=name)
