"""Reads of the studies API, always scoped to one organization: the only way views reach
tenant rows, so another organization's data cannot be asked for by mistake."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db.models import Exists, OuterRef, Q, QuerySet

from accounts.models import Organization
from core.compiled_lookup import CompiledLookup
from studies.models import Series, Study


@dataclass(frozen=True)
class StudyFilters:
    patient_id: str | None = None
    patient_name: str | None = None  # prefix, of the name or of one of its component groups
    modality: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    accession_number: str | None = None


# The hottest read of the API: compiled once (core/compiled_lookup.py).
_study_by_uid = CompiledLookup(
    lambda organization_id, study_uid: Study.objects.select_related("patient").filter(
        organization_id=organization_id, study_uid=study_uid
    ),
    organization_id=-1,
    study_uid="\x00study_uid",
)


def study_get(*, organization: Organization, study_uid: str) -> Study | None:
    return _study_by_uid.first(organization_id=organization.pk, study_uid=study_uid)


def study_list(*, organization: Organization, filters: StudyFilters) -> QuerySet[Study]:
    """Matching studies with their patients; the caller orders and pages them."""
    studies = Study.objects.select_related("patient").filter(organization=organization)
    if filters.patient_id is not None:
        studies = studies.filter(patient__organization=organization, patient__patient_id=filters.patient_id)
    if filters.patient_name:
        # A prefix of the name or of any of its PN component groups (alphabetic, ideographic,
        # phonetic: "="-separated, PS3.5 §6.2.1), so "山田" finds "Yamada^Tarou=山田^太郎=やまだ^たろう".
        prefix = filters.patient_name
        studies = studies.filter(Q(patient__name__startswith=prefix) | Q(patient__name__contains=f"={prefix}"))
    if filters.accession_number is not None:
        studies = studies.filter(accession_number=filters.accession_number)
    if filters.date_from is not None:
        studies = studies.filter(study_date__gte=filters.date_from)
    if filters.date_to is not None:
        studies = studies.filter(study_date__lte=filters.date_to)
    if filters.modality:
        # Through the series (indexed by study), not the JSON list: works on every database.
        studies = studies.filter(Exists(Series.objects.filter(study=OuterRef("pk"), modality=filters.modality)))
    return studies


def series_list(*, study: Study) -> QuerySet[Series]:
    """The series of a study obtained from study_get (so already scoped)."""
    return Series.objects.filter(study=study).order_by("number", "id")
