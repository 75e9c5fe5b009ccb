"""AuditEvent search (admin keys only, like GET /audit-events): the organization's audit log,
each entry as the AuditEvent accounts/audit/fhir.py writes, matched on the columns behind
each element. The declarations here feed the CapabilityStatement like the records' ones.

``entity`` and ``agent`` match the identifiers PrizMed writes into ``entity.what`` (the study's
``urn:oid:`` UID or the DICOM Patient ID) and ``agent.who`` (the key prefix): PrizMed's
AuditEvents name them by identifier, not by reference, so these two are token parameters here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from django.db.models import Q, QuerySet

from accounts.audit.fhir import ACTION_SYSTEM, ACTIONS, EVENT_TYPES, OTHER_TYPE, OUTCOMES, audit_event
from accounts.audit.log import audit_entry_list
from accounts.models import AuditEntry, Organization
from core.fhir import DICOM_UID_SYSTEM
from records.search import Criterion, Match, ParamType, SearchParam, date_q

_SPEC = "http://hl7.org/fhir/SearchParameter/"
ACTION_CODES = "http://hl7.org/fhir/audit-event-action"
_NONE = Q(pk__in=[])
_ALL = Q(pk__isnull=False)  # not Q(): an empty Q vanishes from an OR instead of matching all


def _param(name: str, kind: ParamType, expression: str, standard: bool = True) -> SearchParam:
    definition = f"{_SPEC}AuditEvent-{name}" if standard else ""
    return SearchParam("AuditEvent", name, kind, expression, None, definition)


AUDIT_PARAMS: dict[str, SearchParam] = {
    p.name: p
    for p in (
        _param("date", ParamType.DATE, "AuditEvent.recorded"),
        _param("action", ParamType.TOKEN, "AuditEvent.action"),
        _param("type", ParamType.TOKEN, "AuditEvent.type"),
        _param("subtype", ParamType.TOKEN, "AuditEvent.subtype"),
        _param("entity", ParamType.TOKEN, "AuditEvent.entity.what.identifier", standard=False),
        _param("agent", ParamType.TOKEN, "AuditEvent.agent.who.identifier", standard=False),
        _param("outcome", ParamType.TOKEN, "AuditEvent.outcome"),
    )
}


def _system_is(m: Match, system: str) -> bool:
    return m.system is None or m.system == system


def _type(m: Match) -> Q:
    if not _system_is(m, OTHER_TYPE["system"]):
        return _NONE
    actions = [action for action, coding in EVENT_TYPES.items() if coding["code"] == m.value]
    q = Q(action__in=actions) if actions else _NONE
    return q | ~Q(action__in=list(EVENT_TYPES)) if m.value == OTHER_TYPE["code"] else q


def _action(m: Match) -> Q:
    if not _system_is(m, ACTION_CODES):
        return _NONE
    actions = [action for action, code in ACTIONS.items() if code == m.value]
    q = Q(action__in=actions) if actions else _NONE
    return q | ~Q(action__in=list(ACTIONS)) if m.value == "E" else q  # every other action is written as E


def _entity(m: Match) -> Q:
    value = m.value or ""
    if m.system == DICOM_UID_SYSTEM or (m.system is None and value.startswith("urn:oid:")):
        return Q(study_uid=value.removeprefix("urn:oid:")) if value.startswith("urn:oid:") else _NONE
    return Q(patient_id=value) if m.system in (None, "") and value else _NONE


def _outcome(m: Match) -> Q:
    successes = [outcome for outcome, code in OUTCOMES.items() if code == m.value]
    if m.value == "4":  # every other outcome is written as 4, a minor failure
        return ~Q(outcome__in=list(OUTCOMES))
    return Q(outcome__in=successes) if successes else _NONE


_MATCHERS: dict[str, Callable[[Match], Q]] = {
    "date": lambda m: date_q(m, "created", "created", point=True),
    "action": _action,
    "type": _type,
    "subtype": lambda m: Q(action=m.value) if _system_is(m, ACTION_SYSTEM) and m.value else _NONE,
    "entity": _entity,
    "agent": lambda m: Q(key_prefix=m.value) if m.system in (None, "urn:prizmed:api-key-prefix") else _NONE,
    "outcome": _outcome,
}


def _entries(organization: Organization, criteria: Sequence[Criterion]) -> QuerySet[AuditEntry]:
    entries = audit_entry_list(organization=organization)
    for criterion in criteria:
        either = _NONE
        for m in criterion.matches:
            either |= _MATCHERS[criterion.param.name](m)
        entries = entries.filter(either)
    return entries


def audit_search(
    *, organization: Organization, criteria: Sequence[Criterion], before: int | None, limit: int
) -> tuple[list[tuple[int, dict[str, object]]], int]:
    """Matching entries newest first, after the cursor ``before`` (an entry id), as (id,
    AuditEvent) pairs, and how many match in all."""
    entries = _entries(organization, criteria)
    page = entries.filter(id__lt=before) if before else entries
    return [(entry.pk, audit_event(entry)) for entry in page[:limit]], entries.count()
