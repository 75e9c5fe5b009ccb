"""core.model_fields.ValuesInsertTextField: instances are bulk-inserted with one parameter per
value (VALUES), not as PostgreSQL arrays (UNNEST), and their DICOM JSON is stored exactly."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from django.db import connection
from django.db.models import Model
from django.test.utils import CaptureQueriesContext

from accounts.services import organization_ensure
from studies.models import Instance, Patient, Series, Study, Upload, UploadItem

# Django takes UNNEST on PostgreSQL only: the embedded run's SQLite always inserts VALUES.
pytestmark = [pytest.mark.django_db, pytest.mark.services]

# Quotes, backslashes, non-ASCII and an array-literal's own delimiters: what escaping must keep.
METADATA = '{"00100010":{"vr":"PN","Value":[{"Alphabetic":"O\'Brien\\\\^{Zoë},\\"N\\""}]}}'


def _inserts(rows: Sequence[Model]) -> list[str]:
    model = type(rows[0])
    with CaptureQueriesContext(connection) as captured:
        model._default_manager.bulk_create(rows)
    return [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]


def test_instances_are_inserted_as_values_and_kept_exactly() -> None:
    assert connection.vendor == "postgresql"
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    upload = Upload.objects.create(organization=org, content_type="application/dicom")
    # The control: a model of plain fields is inserted as UNNEST arrays by this Django.
    control = _inserts([UploadItem(upload=upload, position=n, object_key=f"k/{n}", size=1, sha256="0") for n in (0, 1)])
    assert len(control) == 1 and "UNNEST" in control[0]

    patient = Patient.objects.create(organization=org, patient_id="P1")
    series = Series.objects.create(
        study=Study.objects.create(organization=org, patient=patient, study_uid="1.2"), series_uid="1.2.3"
    )
    rows = [
        Instance(organization=org, series=series, sop_uid=f"1.2.3.{n}", size=1, sha256="0", metadata=METADATA)
        for n in range(3)
    ]
    inserts = _inserts(rows)
    assert len(inserts) == 1 and "UNNEST" not in inserts[0]
    assert list(Instance.objects.filter(series=series).values_list("metadata", flat=True)) == [METADATA] * 3
