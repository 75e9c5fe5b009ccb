"""Audit entries as FHIR R4 AuditEvent resources (the DICOM audit vocabulary of PS3.15 A.5,
as FHIR's AuditEvent expects it)."""

from __future__ import annotations

from typing import Any

from accounts.models import AuditEntry
from core.fhir import DCM_SYSTEM, DICOM_UID_SYSTEM

ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
# PS3.16 CID 400: "DICOM Study Deleted" is the audit event ID of a study deletion.
# "Security Alert" marks an address crossing the failed-authentication limit (accounts/middleware.py).
EVENT_TYPES = {
    "study.delete": {"system": DCM_SYSTEM, "code": "110105", "display": "DICOM Study Deleted"},
    "auth.failures": {"system": DCM_SYSTEM, "code": "110113", "display": "Security Alert"},
}
OTHER_TYPE = {"system": DCM_SYSTEM, "code": "110100", "display": "Application Activity"}  # any other action
# FHIR AuditEvent.action (C R U D E): D delete; E execute (an alert is raised, nothing is read or changed).
ACTIONS = {"study.delete": "D"}
# AuditEvent.subtype: PrizMed's own action name (study.delete, ...), searchable by `subtype`.
ACTION_SYSTEM = "urn:prizmed:audit-action"
# FHIR AuditEvent.outcome: 0 success, 4 minor failure (a refused request), 8 serious failure.
OUTCOMES = {"success": "0"}


def audit_event(entry: AuditEntry) -> dict[str, Any]:
    agent: dict[str, Any] = {
        "type": {"coding": [{"system": DCM_SYSTEM, "code": "110153", "display": "Source Role ID"}]},
        "who": {"identifier": {"system": "urn:prizmed:api-key-prefix", "value": entry.key_prefix or "-"}},
        "requestor": True,
    }
    if entry.key_role:
        agent["role"] = [{"text": entry.key_role}]
    if entry.client_address:
        agent["network"] = {"address": entry.client_address, "type": "2"}  # 2 = IP address
    details = [
        ("organization", entry.organization_slug),
        ("request_id", entry.request_id),
        ("user_agent", entry.user_agent),
        ("series_count", str(entry.series_count)),
        ("instance_count", str(entry.instance_count)),
        ("bytes", str(entry.bytes)),
        ("status_code", str(entry.status_code)),
    ]
    entities: list[dict[str, Any]] = [
        {
            "what": {"identifier": {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{entry.study_uid or '0'}"}},
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": OBJECT_ROLE, "code": "3", "display": "Report"},
            "name": entry.study_uid or "-",
            "detail": [{"type": name, "valueString": value} for name, value in details if value],
        }
    ]
    if entry.patient_id:
        entities.append(
            {
                "what": {"identifier": {"value": entry.patient_id}},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    return {
        "resourceType": "AuditEvent",
        "id": str(entry.pk),
        "type": EVENT_TYPES.get(entry.action, OTHER_TYPE),
        "subtype": [{"system": ACTION_SYSTEM, "code": entry.action}],
        "action": ACTIONS.get(entry.action, "E"),
        "recorded": entry.created.isoformat(),
        "outcome": OUTCOMES.get(entry.outcome, "4"),
        "outcomeDesc": entry.outcome,
        "agent": [agent],
        "source": {
            "observer": {"display": "PrizMed"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": entities,
    }
