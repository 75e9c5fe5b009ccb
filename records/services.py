"""Appending to the record event log. Callers are the services that change patients and
studies; they call `record_append` inside their own transaction.atomic() block, after the change.

Each event carries the FHIR resource as it is at that change, built by the caller from the rows
it just wrote (studies/index/record_events.py): this app knows FHIR resources as dicts, never
the rows behind them. The same transaction updates the compacted log (RecordResource) that
snapshots and exports read.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone

from records.models import EventCounter, EventKind, RecordEvent, RecordResource, RecordSession
from records.search import search_values_replace

log = logging.getLogger("prizmed.records")


def org_group(organization_id: int) -> str:
    """The channel-layer group whose members are the organization's live record streams."""
    return f"records.{organization_id}"


@dataclass(frozen=True)
class NewEvent:
    """One change to append: its kind, the DICOM Patient ID and Study Instance UID it concerns,
    and the FHIR resource as it is now (the `deleted` payload for a deleted study)."""

    kind: EventKind
    patient_id: str
    study_uid: str
    resource: dict[str, Any]


def record_append(
    *, organization_id: int, kind: EventKind, patient_id: str, study_uid: str, resource: dict[str, Any]
) -> RecordEvent:
    """Append the event of a change and update the current resource (RecordResource), inside the
    change's own transaction: a Patient or ImagingStudy as it is now, or a study's `deleted`."""
    event = NewEvent(kind=kind, patient_id=patient_id, study_uid=study_uid, resource=resource)
    return records_append(organization_id=organization_id, events=[event])[0]


def records_append(*, organization_id: int, events: list[NewEvent]) -> list[RecordEvent]:
    """Append the events of one transaction's changes, in order, with a few statements whatever
    their number: the organization's counter moves by len(events) (one UPDATE ... RETURNING),
    the events are inserted together, and the current resources are upserted (or, for `deleted`,
    removed) together; the latest event of a resource decides it. Raises RuntimeError outside a
    transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record events are written in the transaction of the change they record")
    if not events:
        return []
    # The UPDATE locks the organization's counter row until commit: numbers are handed out
    # and committed in the same order, so "events after N" never skips a late committer.
    last = _counter_advance(organization_id, len(events))
    first = last - len(events) + 1
    # A `deleted` event carries a valid ImagingStudy (FHIR R4: status is required).
    events = [replace(e, resource=deleted_resource(e.resource)) if e.kind == EventKind.DELETED else e for e in events]
    now = timezone.now()
    written = RecordEvent.objects.bulk_create(
        RecordEvent(
            organization_id=organization_id,
            seq=first + n,
            kind=e.kind,
            patient_id=e.patient_id,
            study_uid=e.study_uid,
            resource=e.resource,
            created=now,
        )
        for n, e in enumerate(events)
    )
    latest: dict[tuple[str, str], tuple[int, NewEvent]] = {}
    for n, e in enumerate(events):
        kind = EventKind.STUDY if e.kind == EventKind.DELETED else e.kind
        latest[(kind, e.patient_id if kind == EventKind.PATIENT else e.study_uid)] = (first + n, e)
    gone = [key for (kind, key), (_, e) in latest.items() if e.kind == EventKind.DELETED]
    if gone:
        RecordResource.objects.filter(organization_id=organization_id, kind=EventKind.STUDY, key__in=gone).delete()
    current = [
        RecordResource(organization_id=organization_id, kind=kind, key=key, patient_id=e.patient_id,
                       study_uid=e.study_uid, seq=seq, resource=e.resource, updated=now)
        for (kind, key), (seq, e) in latest.items()
        if e.kind != EventKind.DELETED
    ]  # fmt: skip
    if current:
        RecordResource.objects.bulk_create(
            current,
            update_conflicts=True,
            unique_fields=["organization", "kind", "key"],
            update_fields=["patient_id", "study_uid", "seq", "resource", "updated"],
        )
        search_values_replace(rows=current)  # no read-back: the upsert set their ids
    transaction.on_commit(lambda: _wake(organization_id, last))
    return written


def _counter_advance(organization_id: int, count: int) -> int:
    """Move the organization's event counter on by ``count``; its new value (created at 0 first)."""
    table = connection.ops.quote_name(EventCounter._meta.db_table)
    sql = f"UPDATE {table} SET last_seq = last_seq + %s WHERE organization_id = %s RETURNING last_seq"
    with connection.cursor() as cursor:
        cursor.execute(sql, [count, organization_id])
        row = cursor.fetchone()
        if row is None:
            EventCounter.objects.bulk_create([EventCounter(organization_id=organization_id)], ignore_conflicts=True)
            cursor.execute(sql, [count, organization_id])
            row = cursor.fetchone()
    return int(row[0])


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
    if isinstance(layer, InMemoryChannelLayer) and _stream_loop is None:
        return  # an in-memory layer reaches this process only, where no stream ever started
    try:
        if isinstance(layer, InMemoryChannelLayer) and _stream_loop is not None and not _stream_loop.is_closed():
            asyncio.run_coroutine_threadsafe(layer.group_send(org_group(organization_id), message), _stream_loop)
        else:
            sent = asyncio.run_coroutine_threadsafe(layer.group_send(org_group(organization_id), message), _wake_loop())
            sent.add_done_callback(_wake_failed)
    except Exception:  # the log is the source of truth: a lost wake-up only costs latency
        log.warning("record wake-up not sent", exc_info=True)


_wake_thread: tuple[int, asyncio.AbstractEventLoop] | None = None
_wake_lock = threading.Lock()


def _wake_loop() -> asyncio.AbstractEventLoop:
    """This process's own event loop, on a daemon thread, for wake-ups sent from sync code
    (indexing in a Celery worker): the channel layer keeps one Redis connection on it, where
    async_to_sync made a loop, and so a connection, per wake-up (~2.6 ms of CPU and ~11 ms
    each). Made again in a forked child, where the parent's thread does not run."""
    global _wake_thread
    with _wake_lock:
        if _wake_thread is None or _wake_thread[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="records-wake", daemon=True).start()
            _wake_thread = (os.getpid(), loop)
        return _wake_thread[1]


def _wake_failed(sent: concurrent.futures.Future[None]) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.warning("record wake-up not sent", exc_info=sent.exception())


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
