"""Appending to the record event log. Callers are the services that change patients and
studies; they call these inside their own transaction.atomic() block, after the change.

Each event carries the FHIR resource as it is at that change (built from the rows the caller
just wrote, inside its transaction), and the same transaction updates the compacted log
(RecordResource) that snapshots and exports read.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from accounts.models import Organization
from records import fhir
from records.models import EventCounter, EventKind, RecordEvent, RecordResource, RecordSession
from studies.models import Instance, Patient, Series, Study

log = logging.getLogger("prizmed.records")


def org_group(organization_id: int) -> str:
    """The channel-layer group whose members are the organization's live record streams."""
    return f"records.{organization_id}"


def _append(
    *, organization_id: int, kind: str, patient_id: str, study_uid: str, resource: dict[str, Any]
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
    if kind == EventKind.DELETED:
        RecordResource.objects.filter(organization_id=organization_id, kind=EventKind.STUDY, key=study_uid).delete()
    else:
        RecordResource.objects.update_or_create(
            organization_id=organization_id,
            kind=kind,
            key=patient_id if kind == EventKind.PATIENT else study_uid,
            defaults={"patient_id": patient_id, "study_uid": study_uid, "seq": seq, "resource": resource},
        )
    transaction.on_commit(lambda: _wake(organization_id, seq))
    return event


# Embedded mode: the in-memory channel layer's queues belong to the server's event loop and must
# not be touched from another thread (the in-process task runner's), so such wake-ups are handed
# to that loop. The streams register it when they start.
_stream_loop: asyncio.AbstractEventLoop | None = None


def stream_loop_register(loop: asyncio.AbstractEventLoop) -> None:
    global _stream_loop
    _stream_loop = loop


def _wake(organization_id: int, seq: int) -> None:
    """Tell live streams (every process) that the log grew. Losing this costs latency, not
    events: streams read the log itself and also re-check it periodically."""
    layer = get_channel_layer()
    if layer is None:
        return
    message = {"type": "records.wake", "seq": seq}
    try:
        if isinstance(layer, InMemoryChannelLayer) and _stream_loop is not None and not _stream_loop.is_closed():
            asyncio.run_coroutine_threadsafe(layer.group_send(org_group(organization_id), message), _stream_loop)
        else:
            async_to_sync(layer.group_send)(org_group(organization_id), message)
    except Exception:  # the log is the source of truth: a lost wake-up only costs latency
        log.warning("record wake-up not sent", exc_info=True)


def _organization_slug(organization_id: int) -> str:
    return Organization.objects.values_list("slug", flat=True).get(pk=organization_id)


def patient_resource_build(*, patient: Patient) -> dict[str, Any]:
    return fhir.patient_resource(
        organization_id=patient.organization_id,
        organization_slug=_organization_slug(patient.organization_id),
        patient_id=patient.patient_id,
        name=patient.name,
        birth_date=patient.birth_date,
        sex=patient.sex,
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
        fhir.SeriesRow(
            series_uid=row.series_uid,
            number=row.number,
            modality=row.modality,
            description=row.description,
            body_part=row.body_part,
            instance_count=row.instance_count,
            instances=instances.get(row.pk, []),
        )
        for row in Series.objects.filter(study=study).order_by("number", "series_uid")
    ]
    patient = study.patient
    return fhir.imaging_study_resource(
        organization_id=study.organization_id,
        patient_id=patient.patient_id,
        patient_name=patient.name,
        study_uid=study.study_uid,
        study_date=study.study_date,
        study_time=study.study_time,
        accession_number=study.accession_number,
        description=study.description,
        referring_physician=study.referring_physician,
        modalities=study.modalities,
        series_count=study.series_count,
        instance_count=study.instance_count,
        series=series,
    )


def record_patient_changed(*, patient: Patient) -> RecordEvent:
    return _append(
        organization_id=patient.organization_id,
        kind=EventKind.PATIENT,
        patient_id=patient.patient_id,
        study_uid="",
        resource=patient_resource_build(patient=patient),
    )


def record_study_changed(*, study: Study) -> RecordEvent:
    return _append(
        organization_id=study.organization_id,
        kind=EventKind.STUDY,
        patient_id=study.patient.patient_id,
        study_uid=study.study_uid,
        resource=study_resource_build(study=study),
    )


def record_study_deleted(*, organization_id: int, study_uid: str, patient_id: str) -> RecordEvent:
    return _append(
        organization_id=organization_id,
        kind=EventKind.DELETED,
        patient_id=patient_id,
        study_uid=study_uid,
        resource=fhir.deleted_payload(organization_id=organization_id, study_uid=study_uid, patient_id=patient_id),
    )


def session_open(*, organization_id: int, session_id: str, api_key_id: int | None) -> tuple[int, bool]:
    """The X-Record-Stream session's position, and whether it was just created."""
    session, created = RecordSession.objects.get_or_create(
        organization_id=organization_id, session_id=session_id, defaults={"api_key_id": api_key_id}
    )
    return session.last_seq, created


def session_advance(*, organization_id: int, session_id: str, seq: int) -> None:
    """Remember the last event written to the session's connection."""
    RecordSession.objects.filter(organization_id=organization_id, session_id=session_id).update(
        last_seq=seq, updated=timezone.now()
    )


PRUNE_CHUNK = 10_000  # events per DELETE, so pruning a large backlog never holds long locks


def events_prune(*, now: datetime | None = None) -> int:
    """Drop events beyond the retention (age or count per organization), oldest first, so the log
    stays a gap-free suffix; resuming before it gets a `reset`. Also forgets idle sessions."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.RECORDS_RETENTION_DAYS)
    removed = 0
    for organization_id, head in EventCounter.objects.values_list("organization_id", "last_seq"):
        events = RecordEvent.objects.filter(organization_id=organization_id)
        by_age = events.filter(created__lt=cutoff).aggregate(m=Max("seq"))["m"] or 0
        cut = max(by_age, head - settings.RECORDS_RETENTION_EVENTS)
        low = events.aggregate(m=Min("seq"))["m"]
        while low is not None and low <= cut:
            high = min(low + PRUNE_CHUNK - 1, cut)
            removed += events.filter(seq__gte=low, seq__lte=high).delete()[0]
            low = high + 1
    RecordSession.objects.filter(updated__lt=cutoff).delete()
    return removed
