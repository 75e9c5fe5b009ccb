"""FHIR R4 Patient and ImagingStudy resources from the index rows, as plain JSON dicts.

Built as dicts, not `fhir.resources` models: constructing the pydantic models costs far more
than the rest of an export (docs/records.md has the numbers), so the models validate every shape
in the tests instead. Only elements with a value are written (FHIR forbids empty ones).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, time
from typing import Any

from django.conf import settings

from core.fhir import DCM_SYSTEM, DICOM_UID_SYSTEM
from core.links import DICOMWEB_PATH

RFC3986_SYSTEM = "urn:ietf:rfc:3986"
V2_0203_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0203"
ENDPOINT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
GENDERS = {"M": "male", "F": "female", "O": "other"}
OTHER_MODALITY = "OT"  # DICOM's "Other", for a series whose (Type 1) modality is missing
# The core extension naming a HumanName's representation, and the codes of PN's three component
# groups in their order (PS3.5 §6.2.1): alphabetic, ideographic, phonetic.
EN_REPRESENTATION = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"
REPRESENTATIONS = ("ABC", "IDE", "SYL")


@dataclass(frozen=True)
class InstanceRow:
    sop_uid: str
    sop_class_uid: str
    number: int | None


@dataclass(frozen=True)
class SeriesRow:
    series_uid: str
    number: int | None
    modality: str
    description: str
    body_part: str
    instance_count: int
    instances: Sequence[InstanceRow]


@dataclass(frozen=True)
class PatientRow:
    organization_id: int
    organization_slug: str
    patient_id: str  # DICOM Patient ID; empty (Type 2) for a patient of one study
    study_uid: str  # that one study, for a patient without a Patient ID; else ""
    name: str  # DICOM PN
    birth_date: date | None
    sex: str  # DICOM CS: M, F, O or empty


@dataclass(frozen=True)
class StudyRow:
    organization_id: int
    patient_id: str
    patient_name: str
    study_uid: str
    study_date: date | None
    study_time: time | None
    accession_number: str
    description: str
    referring_physician: str
    modalities: Sequence[str]
    series_count: int
    instance_count: int
    series: Sequence[SeriesRow]
    timezone_offset: str = ""  # "+hh:mm" from (0008,0201), "" unknown


def patient_system(organization_slug: str) -> str:
    """Patient IDs are only unique within an organization, hence a system per organization."""
    return f"urn:prizmed:org:{organization_slug}:patient-id"


def patient_resource_id(organization_id: int, patient_id: str, study_uid: str = "") -> str:
    """The Patient's FHIR id. DICOM Patient IDs may hold characters a FHIR id may not, and a URL
    should not show them: a hash. A patient without a Patient ID is one per study (``study_uid``),
    and its id cannot equal a named patient's (NUL is in no Patient ID)."""
    key = f"{organization_id}\x00{patient_id}" if patient_id else f"{organization_id}\x00\x00{study_uid}"
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def _study_patient_resource_id(organization_id: int, patient_id: str, study_uid: str) -> str:
    """The id of a study's Patient: by Patient ID, or the study's own patient without one."""
    return patient_resource_id(organization_id, patient_id, "" if patient_id else study_uid)


def wado_rs_base() -> str:
    """The address of a dicom-wado-rs Endpoint: the WADO-RS service's base, to which a client
    appends /studies/{uid} (FHIR R4 ImagingStudy.endpoint; PS3.18 §10.4). Absolute under
    PRIZMED_PUBLIC_URL, else the same-origin path (the FHIR REST API serves it absolute)."""
    return f"{settings.PRIZMED_PUBLIC_URL}{DICOMWEB_PATH}"


def human_names(person_name: str) -> list[dict[str, Any]]:
    """The FHIR HumanNames of a DICOM PN (PS3.5 §6.2.1): one per non-empty component group, in
    the order alphabetic, ideographic, phonetic, each marked with its group by the core extension
    iso21090-EN-representation (ABC, IDE, SYL). Components family^given^middle^prefix^suffix map
    to family, given (given, middle), prefix and suffix; ``text`` is always present: Western order
    for the alphabetic group, family first for the ideographic and phonetic ones (the order of the
    languages written in them)."""
    names = []
    for representation, group in zip(REPRESENTATIONS, person_name.split("=")[:3], strict=False):
        parts = [part.strip() for part in group.split("^")]
        parts += [""] * (5 - len(parts))
        family, given, middle, prefix, suffix = parts[:5]
        name: dict[str, Any] = {}
        if family:
            name["family"] = family
        if given or middle:
            name["given"] = [part for part in (given, middle) if part]
        if prefix:
            name["prefix"] = [prefix]
        if suffix:
            name["suffix"] = [suffix]
        if not name:
            continue
        order = (prefix, given, middle, family, suffix) if representation == "ABC" else parts[:5]
        name["text"] = " ".join(part for part in order if part)
        name["extension"] = [{"url": EN_REPRESENTATION, "valueCode": representation}]
        names.append(name)
    return names


def name_text(person_name: str) -> str | None:
    """How a PN reads in one line (a reference's ``display``): its first non-empty group's text."""
    names = human_names(person_name)
    return names[0]["text"] if names else None


def patient_resource(patient: PatientRow) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient_resource_id(patient.organization_id, patient.patient_id, patient.study_uid),
        "gender": GENDERS.get(patient.sex.upper(), "unknown"),
    }
    if patient.patient_id:  # an empty Patient ID (Type 2) is no identifier: none is invented
        resource["identifier"] = [{"system": patient_system(patient.organization_slug), "value": patient.patient_id}]
    if names := human_names(patient.name):
        resource["name"] = names
    if patient.birth_date is not None:
        resource["birthDate"] = patient.birth_date.isoformat()
    return resource


def started(study_date: date | None, study_time: time | None, timezone_offset: str = "") -> str | None:
    """A FHIR dateTime from DICOM DA and TM (PS3.5 §6.2): fractions of a second kept (trailing
    zeros dropped), in the zone of (0008,0201) Timezone Offset From UTC when the data set has one
    (PS3.3 C.12.1.1.8), else read as UTC (the server's TIME_ZONE): FHIR requires a zone with a
    time. A partial TM ("10", "1015") was completed with zeros when read: FHIR dateTime has no
    hour or minute precision."""
    if study_date is None:
        return None
    if study_time is None:
        return study_date.isoformat()
    clock = study_time.strftime("%H:%M:%S")
    if study_time.microsecond:
        clock += f".{study_time.microsecond:06d}".rstrip("0")
    return f"{study_date.isoformat()}T{clock}{timezone_offset or '+00:00'}"


def _unsigned(number: int | None) -> int | None:
    # FHIR `number` is unsignedInt; DICOM's IS may be negative.
    return number if number is not None and number >= 0 else None


def _series(row: SeriesRow) -> dict[str, Any]:
    series: dict[str, Any] = {
        "uid": row.series_uid,
        "modality": {"system": DCM_SYSTEM, "code": row.modality or OTHER_MODALITY},
        "numberOfInstances": row.instance_count,
    }
    if (number := _unsigned(row.number)) is not None:
        series["number"] = number
    if row.description:
        series["description"] = row.description
    if row.body_part:
        series["bodySite"] = {"display": row.body_part}
    instances = []
    for instance in row.instances:
        item: dict[str, Any] = {
            "uid": instance.sop_uid,
            "sopClass": {"system": RFC3986_SYSTEM, "code": f"urn:oid:{instance.sop_class_uid}"},
        }
        if (number := _unsigned(instance.number)) is not None:
            item["number"] = number
        instances.append(item)
    if instances:
        series["instance"] = instances
    return series


def imaging_study_resource(study: StudyRow) -> dict[str, Any]:
    identifiers: list[dict[str, Any]] = [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study.study_uid}"}]
    if study.accession_number:
        identifiers.append(
            {"type": {"coding": [{"system": V2_0203_SYSTEM, "code": "ACSN"}]}, "value": study.accession_number}
        )
    patient_ref = _study_patient_resource_id(study.organization_id, study.patient_id, study.study_uid)
    subject: dict[str, Any] = {"reference": f"Patient/{patient_ref}"}
    if display := name_text(study.patient_name):
        subject["display"] = display
    resource: dict[str, Any] = {
        "resourceType": "ImagingStudy",
        "id": study.study_uid,
        # The Endpoint travels inside the study, so a client needs no second request to retrieve it.
        "contained": [
            {
                "resourceType": "Endpoint",
                "id": "wado",
                "status": "active",
                "connectionType": {"system": ENDPOINT_TYPE_SYSTEM, "code": "dicom-wado-rs"},
                "payloadType": [{"text": "DICOM"}],
                "payloadMimeType": ["application/dicom"],
                "address": wado_rs_base(),
            }
        ],
        "identifier": identifiers,
        "status": "available",
        "subject": subject,
        "endpoint": [{"reference": "#wado"}],
        "numberOfSeries": study.series_count,
        "numberOfInstances": study.instance_count,
    }
    codes = sorted({code for code in study.modalities if code})
    if codes:
        resource["modality"] = [{"system": DCM_SYSTEM, "code": code} for code in codes]
    if (when := started(study.study_date, study.study_time, study.timezone_offset)) is not None:
        resource["started"] = when
    if referrer := name_text(study.referring_physician):
        resource["referrer"] = {"display": referrer}
    if study.description:
        resource["description"] = study.description
    if study.series:
        resource["series"] = [_series(row) for row in study.series]
    return resource


def deleted_payload(*, study_uid: str, patient_id: str, organization_id: int) -> dict[str, Any]:
    """What a `deleted` event says: which ImagingStudy is gone, and whose it was."""
    return {
        "resourceType": "ImagingStudy",
        "id": study_uid,
        "identifier": [{"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study_uid}"}],
        "subject": {"reference": f"Patient/{_study_patient_resource_id(organization_id, patient_id, study_uid)}"},
    }
