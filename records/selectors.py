"""Reads of the record log and the current resources, always of one organization.

Resources are read as JSON text straight from the database (no decode and re-encode): that is
what keeps an export at thousands of resources per second.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Min, Q, QuerySet, TextField
from django.db.models.functions import Cast

from records.models import EventCounter, RecordEvent, RecordResource


@dataclass(frozen=True)
class RecordFilter:
    patient: str | None = None  # DICOM Patient ID
    study: str | None = None  # Study Instance UID

    @property
    def everything(self) -> bool:
        """No filter: every event matches."""
        return self.patient is None and self.study is None

    def q(self) -> Q:
        q = Q()
        if self.patient is not None:
            q &= Q(patient_id=self.patient)
        if self.study is not None:
            q &= Q(study_uid=self.study)
        return q

    def matches(self, *, patient_id: str, study_uid: str) -> bool:
        """The test of q(), on an event already read (the shared log reader reads unfiltered)."""
        return (self.patient is None or self.patient == patient_id) and (self.study is None or self.study == study_uid)


@dataclass(frozen=True)
class Event:
    seq: int
    kind: str
    body: str  # JSON text


@dataclass(frozen=True)
class EventBatch:
    events: list[Event]
    scanned_to: int  # every event up to here was read (and matched the filter or not)
    expired: bool  # events after the position were already pruned: the client must start over


@dataclass(frozen=True)
class LogEntry:
    seq: int
    kind: str
    patient_id: str  # DICOM Patient ID
    study_uid: str  # Study Instance UID
    body: str  # JSON text


@dataclass(frozen=True)
class Resource:
    id: int
    kind: str
    body: str  # JSON text


def log_head(*, organization_id: int) -> int:
    """The last sequence number handed out (0 before the first event). Every event up to it is
    committed and visible: numbers are committed in order."""
    head = EventCounter.objects.filter(organization_id=organization_id).values_list("last_seq", flat=True).first()
    return head or 0


def log_oldest(*, organization_id: int) -> int | None:
    oldest: int | None = RecordEvent.objects.filter(organization_id=organization_id).aggregate(m=Min("seq"))["m"]
    return oldest


def position_valid(*, organization_id: int, position: int, head: int) -> bool:
    """Whether every event after `position` is still in the log (pruning drops a prefix)."""
    if position > head:
        return False  # a number this log never handed out (another deployment, a restored database)
    if position == head:
        return True
    oldest = log_oldest(organization_id=organization_id)
    return oldest is not None and oldest <= position + 1


def events_after(*, organization_id: int, position: int, flt: RecordFilter, limit: int) -> EventBatch:
    head = log_head(organization_id=organization_id)
    rows = list(
        RecordEvent.objects.filter(flt.q(), organization_id=organization_id, seq__gt=position, seq__lte=head)
        .order_by("seq")
        .annotate(body=Cast("resource", TextField()))
        .values_list("seq", "kind", "body")[:limit]
    )
    # The read is complete if it starts right after the position (the log has no gaps), or else
    # if, checked after the read, the log still starts at or before position+1.
    contiguous = bool(rows) and rows[0][0] == position + 1
    if not contiguous and not position_valid(organization_id=organization_id, position=position, head=head):
        return EventBatch(events=[], scanned_to=position, expired=True)
    scanned_to = rows[-1][0] if len(rows) == limit else head
    return EventBatch(events=[Event(*row) for row in rows], scanned_to=scanned_to, expired=False)


def log_read(*, organization_id: int, after: int, limit: int) -> list[LogEntry]:
    """Up to `limit` events after `after`, in order, unfiltered: one SQL statement.

    Without the head bound of events_after: numbers commit in order, so a statement that sees
    event N sees every event before it; the last entry read is how far the log was read. A
    first entry above after+1 means the events in between were pruned."""
    rows = (
        RecordEvent.objects.filter(organization_id=organization_id, seq__gt=after)
        .order_by("seq")
        .annotate(body=Cast("resource", TextField()))
        .values_list("seq", "kind", "patient_id", "study_uid", "body")[:limit]
    )
    return [LogEntry(*row) for row in rows]


@dataclass(frozen=True)
class SeqRange:
    """Bounds on the sequence number of the change that wrote a current resource."""

    after: int | None = None  # only resources changed after this event
    up_to: int | None = None  # only resources as of this event (a snapshot at the log head)


def _resources(*, organization_id: int, flt: RecordFilter, seq: SeqRange) -> QuerySet[RecordResource]:
    rows = RecordResource.objects.filter(flt.q(), organization_id=organization_id)
    if seq.after is not None:
        rows = rows.filter(seq__gt=seq.after)
    if seq.up_to is not None:
        rows = rows.filter(seq__lte=seq.up_to)
    return rows


def resources_after(
    *, organization_id: int, after_id: int, flt: RecordFilter, limit: int, seq: SeqRange = SeqRange()
) -> list[Resource]:
    """Current resources in id order after a cursor."""
    rows = _resources(organization_id=organization_id, flt=flt, seq=seq).filter(id__gt=after_id)
    found = rows.order_by("id").annotate(body=Cast("resource", TextField())).values_list("id", "kind", "body")
    return [Resource(*row) for row in found[:limit]]


def resources_count(*, organization_id: int, flt: RecordFilter, seq: SeqRange) -> int:
    return _resources(organization_id=organization_id, flt=flt, seq=seq).count()
