"""studies/views.py builds the study and series bodies directly: equal to what their DRF
serializers (still the documented schema) write, for full and empty values."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from accounts.services import organization_ensure
from studies.models import Patient, Series, Study
from studies.views import SeriesOutput, StudyOutput, series_body, study_body

pytestmark = pytest.mark.django_db


def as_json(value: object) -> object:
    return json.loads(json.dumps(value))


def test_the_study_body_is_the_serializers() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    full = Patient.objects.create(organization=org, patient_id="P1", name="Müller^Ann", birth_date=dt.date(1980, 2, 3),
                                  sex="F")  # fmt: skip
    empty = Patient.objects.create(organization=org, patient_id="P2")
    studies = [
        Study.objects.create(
            organization=org,
            patient=full,
            study_uid="1.2.3",
            study_date=dt.date(2024, 1, 2),
            study_time=dt.time(10, 11, 12, 345678),
            accession_number="A1",
            description="Brain",
            referring_physician="Roe^Bo",
            modalities=["CT", "MR"],
            series_count=2,
            instance_count=7,
            bytes=12345,
            first_received=dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC),
            last_received=dt.datetime(2026, 1, 2, 4, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        ),
        Study.objects.create(organization=org, patient=empty, study_uid="1.2.4"),
    ]
    for study in Study.objects.select_related("patient").filter(pk__in=[s.pk for s in studies]):
        assert as_json(study_body(study)) == as_json(StudyOutput(study).data)


def test_the_series_body_is_the_serializers() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    patient = Patient.objects.create(organization=org, patient_id="P1")
    study = Study.objects.create(organization=org, patient=patient, study_uid="1.2.3")
    rows = [
        Series.objects.create(
            study=study,
            series_uid="1.2.3.1",
            number=3,
            modality="CT",
            description="Axial",
            body_part="HEAD",
            instance_count=4,
            bytes=99,
            storage_prefix="uploads/1/x/",
        ),
        Series.objects.create(study=study, series_uid="1.2.3.2"),
    ]
    for series in rows:
        series.refresh_from_db()
        assert as_json(series_body(series)) == as_json(SeriesOutput(series).data)
