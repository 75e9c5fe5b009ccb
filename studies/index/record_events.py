"""The record events of index changes: the FHIR Patient and ImagingStudy built from the rows a
transaction just wrote (studies/index/fhir.py), appended to the record log in that transaction."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

from accounts.models import Organization
from core.compiled_lookup import CompiledListLookup
from records.models import EventKind, RecordEvent
from records.services import NewEvent, record_append
from studies.index import fhir
from studies.models import Instance, Patient, Series, Study

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")
SERIES_ORDER = ("number", "series_uid")  # the order of an ImagingStudy's series, as the database sorts


def _organization_slug(organization_id: int) -> str:
    return Organization.objects.values_list("slug", flat=True).get(pk=organization_id)


def _row(row_type: type[R], source: models.Model, **given: Any) -> R:
    """A row of studies/index/fhir.py from an index row: each field read from the attribute of
    the same name, unless ``given``."""
    values = {f.name: given[f.name] if f.name in given else getattr(source, f.name) for f in fields(row_type)}
    return row_type(**values)


def patient_resource_build(*, patient: Patient) -> dict[str, Any]:
    return fhir.patient_resource(
        _row(fhir.PatientRow, patient, organization_slug=_organization_slug(patient.organization_id))
    )


def study_resource_build(*, study: Study) -> dict[str, Any]:
    """The study's ImagingStudy from its rows (as the calling transaction sees them): two queries."""
    return study_resources_build(studies=[study])[study.pk]


# Compiled once per number of studies (core/compiled_lookup.py): every indexing batch reads them.
_instance_rows: CompiledListLookup[Instance] = CompiledListLookup(
    lambda study_ids: (
        Instance.objects.filter(series__study_id__in=study_ids)
        .order_by("series_id", "number", "sop_uid")
        .values("series_id", "sop_uid", "sop_class_uid", "number")
    ),
    kinds=[int],
)


def study_resources_build(
    *, studies: list[Study], series_rows: list[Series] | None = None
) -> dict[int, dict[str, Any]]:
    """The ImagingStudy of each study (by id) from its rows, as the calling transaction sees
    them: two queries whatever the number of studies, one when the caller read every series of
    these studies already (``series_rows``, in SERIES_ORDER); each study's ``patient`` must be
    loaded."""
    instances: dict[int, list[fhir.InstanceRow]] = {}
    for found in _instance_rows.dicts([[study.pk for study in studies]]):
        instances.setdefault(found["series_id"], []).append(
            fhir.InstanceRow(found["sop_uid"], found["sop_class_uid"], found["number"])
        )
    series: dict[int, list[fhir.SeriesRow]] = {study.pk: [] for study in studies}
    if series_rows is None:
        series_rows = list(Series.objects.filter(study__in=studies).order_by(*SERIES_ORDER))
    for row in series_rows:
        series[row.study_id].append(_row(fhir.SeriesRow, row, instances=instances.get(row.pk, [])))
    return {
        study.pk: fhir.imaging_study_resource(
            _row(
                fhir.StudyRow,
                study,
                patient_id=study.patient.patient_id,
                patient_name=study.patient.name,
                series=series[study.pk],
            )
        )
        for study in studies
    }


def patient_event(*, patient: Patient, organization_slug: str) -> NewEvent:
    """The event of a created or changed patient (for records_append)."""
    resource = fhir.patient_resource(_row(fhir.PatientRow, patient, organization_slug=organization_slug))
    return NewEvent(kind=EventKind.PATIENT, patient_id=patient.patient_id, study_uid="", resource=resource)


def study_events(*, studies: list[Study], series_rows: list[Series] | None = None) -> list[NewEvent]:
    """The events of changed studies, in the given order (for records_append): two queries, or
    one given every series of these studies (``series_rows``, in SERIES_ORDER)."""
    resources = study_resources_build(studies=studies, series_rows=series_rows)
    return [
        NewEvent(kind=EventKind.STUDY, patient_id=s.patient.patient_id, study_uid=s.study_uid, resource=resources[s.pk])
        for s in studies
    ]


def study_deleted_event(*, organization_id: int, study_uid: str, patient_id: str) -> NewEvent:
    """The event of a study gone (its last instance moved to another study)."""
    resource = fhir.deleted_payload(organization_id=organization_id, study_uid=study_uid, patient_id=patient_id)
    return NewEvent(kind=EventKind.DELETED, patient_id=patient_id, study_uid=study_uid, resource=resource)


def record_patient_key(patient: Patient) -> str:
    """The patient as the record log keys and filters it: the Patient ID, or for a patient
    without one (one per study) "\\" and its FHIR id. No Patient ID holds a backslash (LO, VM 1:
    it is the value delimiter, PS3.5 §6.2), so the two never meet."""
    return _patient_key(patient.organization_id, patient.patient_id, patient.study_uid)


def _patient_key(organization_id: int, patient_id: str, study_uid: str) -> str:
    return patient_id or "\\" + fhir.patient_resource_id(organization_id, "", study_uid)


def record_patient_changed(*, patient: Patient) -> RecordEvent:
    return record_append(
        organization_id=patient.organization_id,
        kind=EventKind.PATIENT,
        patient_id=record_patient_key(patient),
        study_uid="",
        resource=patient_resource_build(patient=patient),
    )


def record_study_changed(*, study: Study) -> RecordEvent:
    return record_append(
        organization_id=study.organization_id,
        kind=EventKind.STUDY,
        patient_id=record_patient_key(study.patient),
        study_uid=study.study_uid,
        resource=study_resource_build(study=study),
    )


def record_study_deleted(*, organization_id: int, study_uid: str, patient_id: str) -> RecordEvent:
    """``patient_id``: the study's DICOM Patient ID ("" for a patient of this study alone)."""
    return record_append(
        organization_id=organization_id,
        kind=EventKind.DELETED,
        patient_id=_patient_key(organization_id, patient_id, study_uid),
        study_uid=study_uid,
        resource=fhir.deleted_payload(organization_id=organization_id, study_uid=study_uid, patient_id=patient_id),
    )
