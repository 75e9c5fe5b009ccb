"""The record events of index changes: the FHIR Patient and ImagingStudy built from the rows a
transaction just wrote (studies/index/fhir.py), appended to the record log in that transaction."""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any, TypeVar

from django.db import models

from accounts.models import Organization
from records.models import EventKind, RecordEvent
from records.services import record_append
from studies.index import fhir
from studies.models import Instance, Patient, Series, Study

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


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
    instances: dict[int, list[fhir.InstanceRow]] = {}
    rows = (
        Instance.objects.filter(series__study=study)
        .order_by("series_id", "number", "sop_uid")
        .values_list("series_id", "sop_uid", "sop_class_uid", "number")
    )
    for series_id, sop_uid, sop_class_uid, number in rows:
        instances.setdefault(series_id, []).append(fhir.InstanceRow(sop_uid, sop_class_uid, number))
    series = [
        _row(fhir.SeriesRow, row, instances=instances.get(row.pk, []))
        for row in Series.objects.filter(study=study).order_by("number", "series_uid")
    ]
    patient = study.patient
    return fhir.imaging_study_resource(
        _row(fhir.StudyRow, study, patient_id=patient.patient_id, patient_name=patient.name, series=series)
    )


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
