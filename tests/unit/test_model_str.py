"""Every model names itself in the dashboard by what it is, never "Study object (27)"."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.db import models

MODELS = [model for label in ("accounts", "studies", "records") for model in apps.get_app_config(label).get_models()]


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_it_has_a_str_of_its_own(model: type[models.Model]) -> None:
    assert model.__str__ is not models.Model.__str__
    # Built unsaved, with a primary key and blank fields: __str__ reads no other row.
    instance = model(pk=27)
    assert not re.fullmatch(r".* object \(27\)", str(instance))


def test_it_shows_a_study_by_its_uid_and_a_patient_by_id_and_name() -> None:
    from studies.models import Patient, Study

    assert str(Study(pk=27, study_uid="1.2.840.1")) == "study 1.2.840.1"
    assert str(Patient(pk=3, patient_id="P-9", name="Doe^John")) == "P-9 (Doe^John)"
