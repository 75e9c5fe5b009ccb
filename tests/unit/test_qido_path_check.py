"""A QIDO-RS search under a study or series path answers only for the organization's own:
404 for another tenant's or an unknown one, checked on the search's own thread hop."""

from __future__ import annotations

import pytest

from accounts.models import Organization
from accounts.services import organization_ensure
from core.errors import ApiError
from dicomweb.attributes import Level
from dicomweb.matching import Scope
from dicomweb.qido import query_parse
from dicomweb.qido_rs import _checked_search
from studies.models import Instance, Patient, Series, Study

pytestmark = pytest.mark.django_db


class _Request:
    def base(self) -> str:
        return "http://testserver"


def _study(org: Organization, uid: str) -> None:
    patient = Patient.objects.create(organization=org, patient_id="P1", name="Doe^Jane")
    study = Study.objects.create(organization=org, patient=patient, study_uid=uid)
    series = Series.objects.create(study=study, series_uid=f"{uid}.1", number=1)
    for n in (1, 2, 3):
        Instance.objects.create(organization=org, series=series, sop_uid=f"{uid}.1.{n}", sop_class_uid="1.2",
                                transfer_syntax_uid="1.2.840.10008.1.2.1", number=n, object_key="k", size=1,
                                sha256="0" * 64)  # fmt: skip


def test_it_answers_for_the_organizations_study_and_series_only() -> None:
    acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex")
    _study(acme, "1.2.3")
    _study(globex, "1.2.9")
    query = query_parse([], level=Level.INSTANCE)
    page, base = _checked_search(_Request(), Scope(acme, "1.2.3", "1.2.3.1"), query)  # type: ignore[arg-type]
    assert base == "http://testserver" and len(page.results) == 3
    page, _ = _checked_search(_Request(), Scope(acme, "1.2.3"), query)  # type: ignore[arg-type]
    assert len(page.results) == 3
    for scope in (Scope(acme, "1.2.9"), Scope(acme, "1.2.3", "1.2.9.1"), Scope(acme, "1.2.4"), Scope(globex, "1.2.3")):
        with pytest.raises(ApiError) as refused:
            _checked_search(_Request(), scope, query)  # type: ignore[arg-type]
        assert refused.value.status == 404
