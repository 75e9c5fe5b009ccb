"""Appending to the record event log. Callers are the services that change patients and
studies; they call these inside their own transaction.atomic() block, after the change."""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models import F

from records.models import EventCounter, EventKind, RecordEvent
from studies.models import Patient, Study

log = logging.getLogger("prizmed.records")


def org_group(organization_id: int) -> str:
    """The channel-layer group whose members are the organization's live record streams."""
    return f"records.{organization_id}"


def _append(
    *, organization_id: int, kind: str, patient_id: str, study_uid: str, resource: dict[str, Any] | None
) -> RecordEvent:
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record events are written in the transaction of the change they record")
    EventCounter.objects.bulk_create([EventCounter(organization_id=organization_id)], ignore_conflicts=True)
    # The UPDATE locks the organization's counter row until commit: numbers are handed out
    # and committed in the same order, so "events after N" never skips a late committer.
    EventCounter.objects.filter(organization_id=organization_id).update(last_seq=F("last_seq") + 1)
    seq = EventCounter.objects.values_list("last_seq", flat=True).get(organization_id=organization_id)
    event = RecordEvent.objects.create(
        organization_id=organization_id,
        seq=seq,
        kind=kind,
        patient_id=patient_id,
        study_uid=study_uid,
        resource=resource,
    )
    transaction.on_commit(lambda: _wake(organization_id, seq))
    return event


def _wake(organization_id: int, seq: int) -> None:
    """Tell live streams (every process) that the log grew. Losing this costs latency, not
    events: streams read the log itself and also re-check it periodically."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(org_group(organization_id), {"type": "records.wake", "seq": seq})
    except Exception:  # noqa: BLE001 - the log is the source of truth; a lost wake-up is tolerable
        log.warning("record wake-up not sent", exc_info=True)


def record_patient_changed(*, patient: Patient) -> RecordEvent:
    return _append(
        organization_id=patient.organization_id,
        kind=EventKind.PATIENT,
        patient_id=patient.patient_id,
        study_uid="",
        resource=None,
    )


def record_study_changed(*, study: Study) -> RecordEvent:
    return _append(
        organization_id=study.organization_id,
        kind=EventKind.STUDY,
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        resource=None,
    )


def record_study_deleted(*, organization_id: int, study_uid: str, patient_id: str) -> RecordEvent:
    return _append(
        organization_id=organization_id,
        kind=EventKind.DELETED,
        patient_id=patient_id,
        study_uid=study_uid,
        resource=None,
    )
