"""core.postgresql: Django's PostgreSQL backend with bulk inserts as VALUES, not UNNEST arrays,
and values with quotes, backslashes and non-ASCII stored exactly."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.backends.postgresql.compiler import SQLInsertCompiler as DjangoInsertCompiler
from django.db.models import Model
from django.db.models.sql import InsertQuery
from django.test.utils import CaptureQueriesContext

from accounts.services import organization_ensure
from studies.models import Instance, Patient, Series, Study, Upload, UploadItem

# The embedded run's SQLite always inserts VALUES: this backend is the services run's.
pytestmark = [pytest.mark.django_db, pytest.mark.services]

# Quotes, backslashes, non-ASCII and an array literal's own delimiters: what escaping must keep.
METADATA = '{"00100010":{"vr":"PN","Value":[{"Alphabetic":"O\'Brien\\\\^{Zoë},\\"N\\""}]}}'


def _items(upload: Upload) -> list[UploadItem]:
    return [UploadItem(upload=upload, position=n, object_key=f"k/{n}", size=1, sha256="0") for n in (0, 1)]


def test_django_itself_would_insert_these_rows_as_unnest_arrays() -> None:
    # The control: without core.postgresql, the same insert is UNNEST (so the test below can fail).
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    query = InsertQuery(UploadItem)
    rows: list[Model] = [*_items(Upload.objects.create(organization=org, content_type="application/dicom"))]
    query.insert_values([f for f in UploadItem._meta.concrete_fields if not f.primary_key], rows)
    ((sql, _),) = DjangoInsertCompiler(query, connection, "default").as_sql()
    assert "UNNEST" in sql


def test_bulk_inserts_are_values_and_keep_every_character() -> None:
    assert connection.settings_dict["ENGINE"] == "core.postgresql"
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    upload = Upload.objects.create(organization=org, content_type="application/dicom")
    patient = Patient.objects.create(organization=org, patient_id="P1")
    study = Study.objects.create(organization=org, patient=patient, study_uid="1.2")
    series = Series.objects.create(study=study, series_uid="1.2.3")
    instances = [
        Instance(organization=org, series=series, sop_uid=f"1.2.3.{n}", size=1, sha256="0", metadata=METADATA)
        for n in range(3)
    ]
    with CaptureQueriesContext(connection) as captured:
        UploadItem.objects.bulk_create(_items(upload))
        Instance.objects.bulk_create(instances)
    inserts = [q["sql"] for q in captured.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 2 and not any("UNNEST" in sql for sql in inserts)
    assert list(Instance.objects.filter(series=series).values_list("metadata", flat=True)) == [METADATA] * 3
