"""Appending to the record event log. Callers are the services that change patients and
studies; they call `record_append` inside their own transaction.atomic() block, after the change.

Each event carries the FHIR resource as it is at that change, built by the caller from the rows
it just wrote (studies/index/record_events.py): this app knows FHIR resources as dicts, never
the rows behind them. The same transaction updates the compacted log (RecordResource) that
snapshots and exports read.
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

from records.models import EventCounter, EventKind, RecordEvent, RecordResource, RecordSession
from records.search import search_values_replace

log = logging.getLogger("prizmed.records")


def org_group(organization_id: int) -> str:
    """The channel-layer group whose members are the organization's live record streams."""
    return f"records.{organization_id}"


def record_append(
    *, organization_id: int, kind: EventKind, patient_id: str, study_uid: str, resource: dict[str, Any]
) -> RecordEvent:
    """Append the event of a change and update the current resource (RecordResource), inside the
    change's own transaction: a Patient or ImagingStudy as it is now, or a study's `deleted`."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record events are written in the transaction of the change they record")
    EventCounter.objects.bulk_create([EventCounter(organization_id=organization_id)], ignore_conflicts=True)
    # The UPDATE locks the organization's counter row until commit: numbers are handed out
    # and committed in the same order, so "events after N" never skips a late committer.
    EventCounter.objects.filter(organization_id=organization_id).update(last_seq=F("last_seq") + 1)
    seq = EventCounter.objects.values_list("last_seq", flat=True).get(organization_id=organization_id)
    if kind == EventKind.DELETED:
        resource = deleted_resource(resource)
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
        row, _ = RecordResource.objects.update_or_create(
            organization_id=organization_id,
            kind=kind,
            key=patient_id if kind == EventKind.PATIENT else study_uid,
            defaults={
                "patient_id": patient_id,
                "study_uid": study_uid,
                "seq": seq,
                "resource": resource,
                "updated": event.created,
            },
        )
        search_values_replace(row=row)
    transaction.on_commit(lambda: _wake(organization_id, seq))
    return event


# FHIR R4 ImagingStudy.status of a deleted study: the record is withdrawn and should no longer be
# used, FHIR's meaning of entered-in-error; the SSE event's name (`deleted`) says why.
DELETED_STATUS = "entered-in-error"


def deleted_resource(resource: dict[str, Any]) -> dict[str, Any]:
    """The payload of a `deleted` event as a valid ImagingStudy: the caller's (id, identifiers,
    subject) with the required ``status`` (FHIR R4 ImagingStudy.status, 1..1)."""
    return {**resource, "status": DELETED_STATUS}


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


PRUNE_EVENTS_PER_DELETE = 10_000  # events per DELETE, so pruning a large backlog never holds long locks


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
            high = min(low + PRUNE_EVENTS_PER_DELETE - 1, cut)
            removed += events.filter(seq__gte=low, seq__lte=high).delete()[0]
            low = high + 1
    RecordSession.objects.filter(updated__lt=cutoff).delete()
    return removed
