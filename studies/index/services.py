"""Indexing the stored instances of an upload into Patient / Study / Series / Instance (API.md §2).

Most uploads are small (one instance per request is the common case): a queued upload of at
most BATCH_ITEMS instances is indexed in one transaction, together with the other small
uploads of its organization that are queued and not taken by another worker, up to BATCH_ITEMS
instances in all (``uploads_index_queued``): they go from `queued` to `done` at once, and the
fixed cost of a transaction is shared. A bigger upload is indexed in parts of PART_POSITIONS
positions, each its own task, so several workers share it; a part reads headers and builds their
DICOMweb attributes outside any transaction (the slow steps: under the study's lock they would
keep the parts of one study from running side by side) and writes each batch of BATCH_ITEMS
items in one transaction.
Every step is idempotent: a batch works only on uploads still `queued` under their lock, or
re-locks its items and skips those no longer `stored`, so a task run again after a crash or
run twice at once indexes every instance exactly once.

Lock order, the same everywhere (no deadlocks): uploads (a batch's own upload waited for, the
others of the batch only taken when free), their items, patients by Patient ID, studies by
Study Instance UID (the batch's own and those its re-sent instances come from), then
instances. Counts and bytes of a study and its series change only under the study's row lock,
so they stay exact with any number of workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Organization
from core.compiled_lookup import CompiledListLookup, CompiledLookup
from dicom.header import InstanceHeader, InvalidInstance, read_header
from records.services import NewEvent, records_append
from studies.index.dicomweb_attributes import (
    INSTANCE_FIELDS,
    SERIES_FIELDS,
    DicomwebAttributes,
    dicomweb_attributes,
    dicomweb_attributes_set,
)
from studies.index.item_outcomes import item_outcomes_write
from studies.index.record_events import SERIES_ORDER, patient_event, study_deleted_event, study_events
from studies.models import (
    Instance,
    ItemState,
    Patient,
    Series,
    Study,
    Upload,
    UploadItem,
    UploadState,
)
from studies.objects.deletion import objects_delete_on_commit
from studies.objects.store import storage

PART_POSITIONS = 250  # positions per task
BATCH_ITEMS = 250  # items per transaction
BATCH_UPLOADS = 50  # queued uploads indexed together at most
RETRIES = 5  # a batch that lost a race (unique insert, deleted study, deadlock) runs again
TOO_LARGE = "study-too-large"
MISSING = "missing-object"
FAILED = "indexing-failed"
STUDY_MISMATCH = "study-mismatch"
PATIENT_MISMATCH = "patient-mismatch"


# The batch's reads, compiled once per shape (core/compiled_lookup.py): building and compiling
# each QuerySet cost ~0.3-0.5 ms, ten times what the database takes to answer it, and a
# single-instance upload makes a dozen of them (docs/benchmarks.md, issue 19).
_upload_locked: CompiledLookup[Upload] = CompiledLookup(
    lambda pk: Upload.objects.select_for_update(of=("self",)).select_related("organization__plan").filter(pk=pk),
    pk=UUID(int=0xF00D),
)
_uploads_queued_free: CompiledLookup[Upload] = CompiledLookup(
    lambda org_id, room, own: (
        Upload.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(organization_id=org_id, state=UploadState.QUEUED, instances_received__lte=room)
        .exclude(pk=own)
        .order_by("created")[:BATCH_UPLOADS]
    ),
    org_id=-1,
    room=2_000_000_011,
    own=UUID(int=0xF00D),
)
_items_stored: CompiledListLookup[UploadItem] = CompiledListLookup(
    lambda uploads: UploadItem.objects.filter(upload_id__in=uploads, state=ItemState.STORED), kinds=[UUID]
)
_study_owners: CompiledListLookup[Study] = CompiledListLookup(
    lambda uids, org_id: Study.objects.filter(organization_id=org_id, study_uid__in=uids).values(
        "study_uid", "patient__patient_id", "patient__study_uid"
    ),
    kinds=[str],
    org_id=-1,
)
_instance_studies: CompiledListLookup[Instance] = CompiledListLookup(
    lambda sop_uids, org_id: Instance.objects.filter(organization_id=org_id, sop_uid__in=sop_uids).values(
        "series__study__study_uid"
    ),
    kinds=[str],
    org_id=-1,
)
_patients_locked: CompiledListLookup[Patient] = CompiledListLookup(
    lambda named, unnamed, org_id: (
        Patient.objects.select_for_update()
        .filter(Q(patient_id__in=named, study_uid="") | Q(patient_id="", study_uid__in=unnamed), organization_id=org_id)
        .order_by("patient_id", "study_uid")
    ),
    kinds=[str, str],
    org_id=-1,
)
_studies_locked: CompiledListLookup[Study] = CompiledListLookup(
    lambda uids, org_id: (
        Study.objects.select_for_update().filter(organization_id=org_id, study_uid__in=uids).order_by("study_uid")
    ),
    kinds=[str],
    org_id=-1,
)
_series_of: CompiledListLookup[Series] = CompiledListLookup(
    lambda study_ids, uids: Series.objects.filter(study_id__in=study_ids, series_uid__in=uids), kinds=[int, str]
)
_series_of_studies: CompiledListLookup[Series] = CompiledListLookup(
    lambda study_ids: Series.objects.filter(study_id__in=study_ids).order_by(*SERIES_ORDER), kinds=[int]
)


class _Retry(Exception):
    """A row this batch relied on vanished (a concurrent delete): run the batch again."""


@dataclass(frozen=True)
class Rejection:
    code: str
    reason: str
    uids: tuple[str, str, str] = ("", "", "")  # (SOP Instance, Study, Series) UIDs, "" where unreadable


def _patient_key(header: InstanceHeader) -> tuple[str, str]:
    """The patient an instance belongs to: (Patient ID, ""), or ("", Study UID) for an empty
    Patient ID (Type 2, PS3.3 C.7.1.1), so studies without one are never merged."""
    return (header.patient_id, "" if header.patient_id else header.study_instance_uid)


def _rejected(header: InstanceHeader, code: str, reason: str) -> Rejection:
    uids = (header.sop_instance_uid, header.study_instance_uid, header.series_instance_uid)
    return Rejection(code, reason, uids)


@dataclass
class _Tally:
    """What a batch did to one of its uploads."""

    indexed: int = 0
    rejected: int = 0
    study_uids: set[str] = field(default_factory=set)


@dataclass
class _Batch:
    """What one transaction writes: filled while walking the batch's items in order."""

    organization: Organization
    limit: int | None  # the plan's max study bytes
    uploads: dict[UUID, Upload]  # the batch's uploads, locked (fresh rows)
    dicomweb: dict[int, DicomwebAttributes]  # by item id, built before the transaction
    tallies: dict[UUID, _Tally] = field(default_factory=dict)
    events: list[NewEvent] = field(default_factory=list)  # record events, in order
    # The batch's series keyed by (study id, Series UID), and its instances already indexed
    # (re-sent, or placed earlier in this batch) by SOP Instance UID; read under their locks.
    series: dict[tuple[int, str], Series] = field(default_factory=dict)
    existing: dict[str, Instance] = field(default_factory=dict)
    indexed: list[UploadItem] = field(default_factory=list)
    rejected: list[UploadItem] = field(default_factory=list)
    doomed_keys: list[str] = field(default_factory=list)
    now: datetime = field(default_factory=timezone.now)
    created: dict[str, Instance] = field(default_factory=dict)
    replaced: dict[str, Instance] = field(default_factory=dict)
    # Series outside this batch that re-sent instances left: id -> (instances, bytes) to subtract.
    moved_out: dict[int, tuple[int, int]] = field(default_factory=dict)
    other_studies: set[int] = field(default_factory=set)  # their studies, recounted too

    def tally(self, item: UploadItem) -> _Tally:
        return self.tallies.setdefault(item.upload_id, _Tally())


def uploads_index_queued(*, upload_id: str) -> bool:
    """Index a queued upload of at most BATCH_ITEMS instances, with the other small uploads of its
    organization queued and not locked by another worker (up to BATCH_UPLOADS uploads and
    BATCH_ITEMS instances), in one transaction: each goes from `queued` to `done`. False when
    the upload is not for this path (bigger, or already `indexing` in parts): index it with
    ``upload_index_begin`` and its parts. Raises DatabaseError/OSError once the batch has
    failed RETRIES times (a race lost each time, or a database or disk failing)."""
    read: dict[int, InstanceHeader | Rejection] = {}  # headers read survive a batch run again
    dicomweb: dict[int, DicomwebAttributes] = {}
    for attempt in range(RETRIES):
        try:
            with transaction.atomic():
                return _index_queued(upload_id, read, dicomweb)
        except (IntegrityError, DatabaseError, _Retry):
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")


def _index_queued(
    upload_id: str, read: dict[int, InstanceHeader | Rejection], dicomweb: dict[int, DicomwebAttributes]
) -> bool:
    # Only the upload rows are locked (`of`), not their organization and plan.
    own = _upload_locked.first(pk=UUID(str(upload_id)))
    if own is None or own.state in (UploadState.DONE, UploadState.FAILED):
        return True  # gone, or indexed meanwhile (by another upload's batch)
    if own.state != UploadState.QUEUED or own.instances_received > BATCH_ITEMS:
        return False
    uploads, room = [own], BATCH_ITEMS - own.instances_received
    others = _uploads_queued_free.all(org_id=own.organization_id, room=room, own=own.pk) if room else []
    for other in others:
        if other.instances_received <= room:
            uploads.append(other)
            room -= other.instances_received
    uploads.sort(key=lambda u: u.created)  # the newest instance last: its demographics win
    rank = {u.pk: n for n, u in enumerate(uploads)}
    # No item lock: items of a `queued` upload change only under the upload's lock, held here.
    items = sorted(_items_stored.all([list(rank)]), key=lambda item: (rank[item.upload_id], item.position))
    by_id = {u.pk: u for u in uploads}
    for item in items:
        if item.pk not in read:
            read[item.pk] = _in_required_study(by_id[item.upload_id], _read(item))
    dicomweb.update(_dicomweb([(item, read[item.pk]) for item in items if item.pk not in dicomweb]))
    organization = own.organization
    batch = _Batch(organization=organization, limit=organization.plan.max_study_bytes, uploads=by_id, dicomweb=dicomweb)
    _write_batch(batch, [(item, read[item.pk]) for item in items], finish=True)
    return True


def upload_index_begin(*, upload_id: str) -> list[tuple[int, int]]:
    """Move a queued upload to `indexing`; the [start, stop) position ranges still to index.
    Empty when there is nothing to do (the upload is then finished, or is not indexable)."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id).first()
        if upload is None or upload.state not in (UploadState.QUEUED, UploadState.INDEXING):
            return []
        if upload.state == UploadState.QUEUED:
            Upload.objects.filter(pk=upload.pk).update(state=UploadState.INDEXING, updated=timezone.now())
        positions = list(
            UploadItem.objects.filter(upload=upload, state=ItemState.STORED)
            .order_by("position")
            .values_list("position", flat=True)
        )
    if not positions:
        upload_finish(upload_id=upload_id)
        return []
    starts = positions[::PART_POSITIONS]
    return [(start, stop) for start, stop in zip(starts, [*starts[1:], positions[-1] + 1], strict=True)]


def upload_index_part(*, upload_id: str, start: int, stop: int) -> None:
    """Index the stored items of positions [start, stop), then finish the upload if it is whole."""
    upload = Upload.objects.select_related("organization__plan").filter(pk=upload_id).first()
    if upload is None or upload.state != UploadState.INDEXING:
        return
    # A failure propagates: the task retries it (studies/index/tasks.py), and gives up with upload_fail.
    items = list(
        UploadItem.objects.filter(
            upload=upload, state=ItemState.STORED, position__gte=start, position__lt=stop
        ).order_by("position")
    )
    for first in range(0, len(items), BATCH_ITEMS):
        parsed = [(item, _in_required_study(upload, _read(item))) for item in items[first : first + BATCH_ITEMS]]
        _index_batch(upload, parsed, _dicomweb(parsed))
    upload_finish(upload_id=upload_id)


def upload_finish(*, upload_id: str) -> None:
    """`done` once no item is left `stored` (any part may be the last to get here)."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().filter(pk=upload_id, state=UploadState.INDEXING).first()
        if upload is None or UploadItem.objects.filter(upload=upload, state=ItemState.STORED).exists():
            return
        Upload.objects.filter(pk=upload.pk).update(state=UploadState.DONE, updated=timezone.now())


def upload_fail(*, upload_id: str, error: str) -> None:
    """Give up on an upload: the items not indexed yet are rejected and their bytes removed,
    so a failed upload keeps no object that no row will ever point at."""
    with transaction.atomic():
        # `queued` too: a small upload goes from `queued` to `done` in one transaction.
        upload = (
            Upload.objects.select_for_update()
            .filter(pk=upload_id, state__in=[UploadState.QUEUED, UploadState.INDEXING])
            .first()
        )
        if upload is None:
            return
        left = UploadItem.objects.filter(upload=upload, state=ItemState.STORED)
        objects_delete_on_commit(list(left.values_list("object_key", flat=True)))
        count = left.update(state=ItemState.REJECTED, reason_code=FAILED, reason=error[:300])
        Upload.objects.filter(pk=upload.pk).update(
            state=UploadState.FAILED,
            error=error,
            instances_rejected=F("instances_rejected") + count,
            updated=timezone.now(),
        )


def _read(item: UploadItem) -> InstanceHeader | Rejection:
    try:
        # The extent ingest recorded: on S3 ranged GETs of the header only, no HEAD first.
        with storage().open_range(item.object_key, 0, item.size) as fp:
            return read_header(fp, item.file_meta())
    except InvalidInstance as exc:
        return Rejection(exc.code, exc.message, exc.uids)
    except FileNotFoundError:
        return Rejection(MISSING, "the stored instance is missing")


def _dicomweb(parsed: list[tuple[UploadItem, InstanceHeader | Rejection]]) -> dict[int, DicomwebAttributes]:
    """The DICOMweb attributes of the items read, by item id: built outside the transaction,
    where the parts of one study's body are indexed side by side."""
    return {item.pk: dicomweb_attributes(header) for item, header in parsed if isinstance(header, InstanceHeader)}


def _in_required_study(upload: Upload, read: InstanceHeader | Rejection) -> InstanceHeader | Rejection:
    """An upload sent to one study (STOW-RS `POST /studies/{study}`, PS3.18 §10.5) keeps
    instances of another study out of the index."""
    required = upload.required_study_uid
    if isinstance(read, InstanceHeader) and required and read.study_instance_uid != required:
        reason = f"the instance belongs to study {read.study_instance_uid}, not {required}"
        return _rejected(read, STUDY_MISMATCH, reason)
    return read


def _same_patient(
    organization: Organization, parsed: list[tuple[UploadItem, InstanceHeader | Rejection]]
) -> tuple[list[tuple[UploadItem, InstanceHeader | Rejection]], set[str]]:
    """Patient consistency (docs/indexing.md): a study belongs to the patient of the first
    instance indexed into it; a later instance with another Patient ID is rejected
    (`patient-mismatch`) and the study left as it was. Read without a lock: a study created
    meanwhile with another patient is caught under the lock (_studies) and the batch rerun.
    Also returns the UIDs of the studies found (they and their patients need no insert)."""
    uids = sorted({h.study_instance_uid for _, h in parsed if isinstance(h, InstanceHeader)})
    owners: dict[str, tuple[str, str]] = {
        row["study_uid"]: (row["patient__patient_id"], row["patient__study_uid"])
        for row in _study_owners.dicts([uids], org_id=organization.pk)
    }
    found = set(owners)
    checked: list[tuple[UploadItem, InstanceHeader | Rejection]] = []
    for item, header in parsed:
        if isinstance(header, InstanceHeader):
            owner = owners.setdefault(header.study_instance_uid, _patient_key(header))
            if owner != _patient_key(header):
                reason = f"Patient ID {header.patient_id!r} differs from {owner[0]!r}, the patient of its study"
                header = _rejected(header, PATIENT_MISMATCH, reason)
        checked.append((item, header))
    return checked, found


def _index_batch(
    upload: Upload,
    parsed: list[tuple[UploadItem, InstanceHeader | Rejection]],
    dicomweb: dict[int, DicomwebAttributes],
) -> None:
    """One batch of a part, in one transaction (run again when it loses a race)."""
    for attempt in range(RETRIES):
        try:
            with transaction.atomic():
                _index_part_batch(upload, parsed, dicomweb)
            return
        except (IntegrityError, DatabaseError, _Retry):
            # Lost a race: a concurrent copy inserted the same row, a study was deleted under
            # us, or PostgreSQL broke a deadlock. The next attempt sees the committed state.
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _index_part_batch(
    upload: Upload,
    parsed: list[tuple[UploadItem, InstanceHeader | Rejection]],
    dicomweb: dict[int, DicomwebAttributes],
) -> None:
    locked = Upload.objects.select_for_update().filter(pk=upload.pk).first()
    if locked is None:
        return  # the upload was removed meanwhile (its organization deleted): nothing to index
    live = set(
        UploadItem.objects.select_for_update()
        .filter(pk__in=[item.pk for item, _ in parsed], state=ItemState.STORED)
        .values_list("pk", flat=True)
    )
    parsed = [(item, header) for item, header in parsed if item.pk in live]
    if not parsed:
        return
    organization = upload.organization
    limit, uploads = organization.plan.max_study_bytes, {locked.pk: locked}
    batch = _Batch(organization=organization, limit=limit, uploads=uploads, dicomweb=dicomweb)
    _write_batch(batch, parsed, finish=False)


def _write_batch(batch: _Batch, parsed: list[tuple[UploadItem, InstanceHeader | Rejection]], *, finish: bool) -> None:
    """Index the items of the batch's (locked) uploads; ``finish``: the uploads are whole, so
    they become `done`."""
    parsed, found = _same_patient(batch.organization, parsed)
    headers = [header for _, header in parsed if isinstance(header, InstanceHeader)]
    sop_uids = [h.sop_instance_uid for h in headers]
    # The studies re-sent instances would leave are locked with the batch's own, in UID order,
    # never after the instances: two batches moving instances opposite ways would deadlock.
    sources = {
        row["series__study__study_uid"] for row in _instance_studies.dicts([sop_uids], org_id=batch.organization.pk)
    }
    # Studies found (and so their patients) are only locked, not inserted first: one that
    # vanished since is missed under the lock and the batch runs again (_Retry), reading anew.
    patients = _patients(batch, headers, found)
    studies, locked = _studies(batch, headers, patients, sources, found)
    batch.series = _series(studies, headers)
    if sources:
        batch.existing = {
            instance.sop_uid: instance
            for instance in Instance.objects.select_for_update(of=("self",))
            .filter(organization=batch.organization, sop_uid__in=sop_uids)
            .select_related("series")
        }
        if any(instance.series.study_id not in locked for instance in batch.existing.values()):
            raise _Retry()  # one moved (or arrived) since `sources` was read: start again
    # With no source, none of these instances existed when read; one inserted since makes the
    # insert below break the unique constraint, and the batch runs again.
    for item, header in parsed:
        if isinstance(header, Rejection):
            _reject(batch, item, header)
        else:
            _place(batch, item, header, studies[header.study_instance_uid])
    _write(batch, studies, finish=finish)


def _reject(batch: _Batch, item: UploadItem, rejection: Rejection) -> None:
    item.state, item.reason_code, item.reason = ItemState.REJECTED, rejection.code, rejection.reason[:300]
    item.replaced = False
    # Every rejection names its instance: as read, else as the File Meta group named it.
    sop, item.study_instance_uid, item.series_instance_uid = rejection.uids
    item.sop_instance_uid = sop or item.media_storage_sop_instance_uid
    batch.rejected.append(item)
    batch.tally(item).rejected += 1
    batch.doomed_keys.append(item.object_key)


def _place(batch: _Batch, item: UploadItem, header: InstanceHeader, study: Study) -> None:
    """Index the item in the (locked) study, or reject it for the plan's study size."""
    limit, existing = batch.limit, batch.existing
    old = existing.get(header.sop_instance_uid)
    old_here = old is not None and old.series.study_id == study.pk
    growth = item.size - (old.size if old is not None and old_here else 0)
    # Set anew on every attempt: a batch that runs again must not keep a lost attempt's outcome.
    item.warnings = [{"code": w.code, "message": w.message} for w in header.warnings]
    item.replaced = old is not None
    if limit is not None and study.bytes + growth > limit:
        _reject(batch, item, _rejected(header, TOO_LARGE, f"the study would exceed the plan's {limit} bytes"))
        return
    target = batch.series[(study.pk, header.series_instance_uid)]
    if old is not None:
        # A re-sent instance replaces the old one: its bytes go, its counts move.
        batch.doomed_keys.append(old.object_key)
        owner = next((s for s in batch.series.values() if s.pk == old.series_id), None)
        if owner is not None:
            owner.instance_count -= 1
            owner.bytes -= old.size
        else:
            count, size = batch.moved_out.get(old.series_id, (0, 0))
            batch.moved_out[old.series_id] = (count + 1, size + old.size)
        if old_here:
            study.bytes -= old.size
        else:
            batch.other_studies.add(old.series.study_id)
        instance = old
        if old.pk is not None:
            batch.replaced[header.sop_instance_uid] = old
    else:
        instance = Instance(organization=batch.organization, sop_uid=header.sop_instance_uid)
        batch.created[header.sop_instance_uid] = instance
        existing[header.sop_instance_uid] = instance
    instance.series = target
    instance.sop_class_uid = header.sop_class_uid
    instance.transfer_syntax_uid = header.transfer_syntax_uid
    instance.number = header.instance_number
    instance.object_key, instance.size, instance.sha256 = item.object_key, item.size, item.sha256
    instance.received = timezone.now()
    dicomweb_attributes_set(instance=instance, series=target, study=study, attributes=batch.dicomweb[item.pk])
    target.instance_count += 1
    target.bytes += item.size
    target.storage_prefix = _common_prefix(target.storage_prefix, item.object_key)
    study.bytes += item.size
    tally = batch.tally(item)
    tally.indexed += 1
    tally.study_uids.add(study.study_uid)
    item.state, item.sop_instance_uid = ItemState.INDEXED, header.sop_instance_uid
    item.study_instance_uid, item.series_instance_uid = header.study_instance_uid, header.series_instance_uid
    batch.indexed.append(item)


# Every column of a study: the batch rewrites its rows whole, as Model.save() would.
_STUDY_FIELDS = [f.name for f in Study._meta.concrete_fields if not f.primary_key]
_SERIES_WRITTEN = ["instance_count", "bytes", "storage_prefix", *SERIES_FIELDS]
_UPLOAD_FIELDS = ["state", "instances_indexed", "instances_rejected", "study_uids", "updated"]


def _write(batch: _Batch, studies: dict[str, Study], *, finish: bool) -> None:
    _instances_write(batch)
    others = (
        Study.objects.select_for_update(of=("self",))
        .select_related("patient")
        .filter(pk__in=batch.other_studies - {s.pk for s in studies.values()})
    )
    touched = sorted([*studies.values(), *(others if batch.other_studies else [])], key=lambda s: s.study_uid)
    # A series can only be left empty by instances moving out or rejected for the study size.
    if batch.moved_out or any(s.instance_count == 0 for s in batch.series.values()):
        Series.objects.filter(study__in=touched, instance_count=0).delete()
    _studies_write(batch, touched)
    records_append(organization_id=batch.organization.pk, events=batch.events)
    item_outcomes_write([*batch.indexed, *batch.rejected])
    objects_delete_on_commit(batch.doomed_keys)
    _uploads_write(batch, finish=finish)


def _instances_write(batch: _Batch) -> None:
    """Instances inserted or rewritten, and the counts of the series they joined or left."""
    Instance.objects.bulk_create(batch.created.values(), batch_size=500)
    if batch.replaced:
        Instance.objects.bulk_update(
            batch.replaced.values(),
            [
                "series",
                "sop_class_uid",
                "transfer_syntax_uid",
                "number",
                "object_key",
                "size",
                "sha256",
                "received",
                *INSTANCE_FIELDS,
            ],
            batch_size=500,
        )
    for series_id, (count, size) in batch.moved_out.items():
        Series.objects.filter(pk=series_id).update(instance_count=F("instance_count") - count, bytes=F("bytes") - size)
    series = list(batch.series.values())
    if len(series) == 1:  # the common case: a plain UPDATE, not bulk_update's CASE per column
        series[0].save(update_fields=_SERIES_WRITTEN)
    elif series:
        Series.objects.bulk_update(series, _SERIES_WRITTEN)


def _studies_write(batch: _Batch, touched: list[Study]) -> None:
    """Recount the touched studies (in UID order), save them or delete those left empty, and
    queue their record events."""
    was_live = {study.pk: study.instance_count > 0 for study in touched}  # as read under the lock
    series_rows = _recount(touched)
    kept: list[Study] = []
    events: dict[str, NewEvent] = {}
    for study in touched:
        if study.instance_count == 0:  # every instance rejected, or moved to another study
            live = was_live[study.pk]
            study.delete()
            if live:
                events[study.study_uid] = study_deleted_event(
                    organization_id=study.organization_id,
                    study_uid=study.study_uid,
                    patient_id=study.patient.patient_id,
                )
            continue
        study.last_received = batch.now
        kept.append(study)
    if len(kept) == 1:
        kept[0].save()
    elif kept:
        Study.objects.bulk_update(kept, _STUDY_FIELDS)
    kept_ids = {study.pk for study in kept}
    kept_series = [row for row in series_rows if row.study_id in kept_ids]
    for study, event in zip(kept, study_events(studies=kept, series_rows=kept_series), strict=True):
        events[study.study_uid] = event
    batch.events.extend(events[uid] for uid in sorted(events))  # in the order the studies were locked


def _uploads_write(batch: _Batch, *, finish: bool) -> None:
    """Counts, study UIDs and (``finish``) `done` of the batch's uploads, whose rows are locked
    by this transaction and were read under that lock: read-merge-write is safe."""
    for upload in batch.uploads.values():
        tally = batch.tallies.get(upload.pk, _Tally())
        known = list(upload.study_uids)
        upload.instances_indexed += tally.indexed
        upload.instances_rejected += tally.rejected
        upload.study_uids = [*known, *sorted(tally.study_uids - set(known))]
        upload.updated = batch.now
        if finish:
            upload.state = UploadState.DONE
    uploads = list(batch.uploads.values())
    if len(uploads) == 1:
        Upload.objects.filter(pk=uploads[0].pk).update(**{name: getattr(uploads[0], name) for name in _UPLOAD_FIELDS})
    else:
        Upload.objects.bulk_update(uploads, _UPLOAD_FIELDS)


def _recount(studies: list[Study]) -> list[Series]:
    """Study totals from their series rows (a handful each, one query), never from instances.
    Returns those rows, in SERIES_ORDER (the studies' ImagingStudy is built from them)."""
    rows: dict[int, list[tuple[str, int, int]]] = {study.pk: [] for study in studies}
    series = _series_of_studies.all([[study.pk for study in studies]])
    for row in series:
        rows[row.study_id].append((row.modality, row.instance_count, row.bytes))
    for study in studies:
        mine = rows[study.pk]
        study.series_count = len(mine)
        study.instance_count = sum(count for _, count, _ in mine)
        study.bytes = sum(size for _, _, size in mine)
        study.modalities = sorted({modality for modality, _, _ in mine if modality})
    return series


def _patients(batch: _Batch, headers: list[InstanceHeader], found: set[str]) -> dict[tuple[str, str], Patient]:
    """Patients of the batch by _patient_key, created or locked; demographics follow the
    newest instance. Those of the ``found`` studies existed when read: locked only."""
    organization, now = batch.organization, batch.now
    newest = {_patient_key(h): h for h in headers}
    known = {_patient_key(h) for h in headers if h.study_instance_uid in found}
    missing = [
        Patient(
            organization=organization,
            patient_id=h.patient_id,
            study_uid=_patient_key(h)[1],
            name=h.patient_name,
            birth_date=h.patient_birth_date,
            sex=h.patient_sex,
            created=now,
            updated=now,
        )
        for key, h in newest.items()
        if key not in known
    ]
    if missing:  # no statement when every patient was found
        Patient.objects.bulk_create(missing, ignore_conflicts=True)
    named = sorted(pid for pid, _ in newest if pid)
    unnamed = sorted(uid for pid, uid in newest if not pid)
    patients = {(p.patient_id, p.study_uid): p for p in _patients_locked.all([named, unnamed], org_id=organization.pk)}
    for key, h in sorted(newest.items()):
        patient = patients.get(key)
        if patient is None:
            raise _Retry()
        demographics = (h.patient_name, h.patient_birth_date, h.patient_sex)
        if patient.created == now:  # inserted by this transaction (its timestamp is ours)
            batch.events.append(patient_event(patient=patient, organization_slug=organization.slug))
        elif demographics != (patient.name, patient.birth_date, patient.sex):
            patient.name, patient.birth_date, patient.sex = demographics
            patient.updated = now
            patient.save(update_fields=["name", "birth_date", "sex", "updated"])
            batch.events.append(patient_event(patient=patient, organization_slug=organization.slug))
    return patients


def _studies(
    batch: _Batch,
    headers: list[InstanceHeader],
    patients: dict[tuple[str, str], Patient],
    sources: set[str],
    found: set[str],
) -> tuple[dict[str, Study], set[int]]:
    """Studies of the batch, created (unless ``found``) or locked, and the ids of every study
    locked: the batch's and the ``sources`` (in one UID order). Descriptive fields follow the
    newest instance. A study deleted between read or create and lock makes the batch run again."""
    organization, now = batch.organization, batch.now
    newest = {h.study_instance_uid: h for h in headers}
    missing = [
        Study(
            organization=organization,
            patient=patients[_patient_key(h)],
            study_uid=uid,
            first_received=now,  # the batch's time, as last_received: first ≤ last always
            last_received=now,
        )
        for uid, h in newest.items()
        if uid not in found
    ]
    if missing:  # no statement when every study was found
        Study.objects.bulk_create(missing, ignore_conflicts=True)
    locked = {s.study_uid: s for s in _studies_locked.all([sorted(newest.keys() | sources)], org_id=organization.pk)}
    studies = {uid: study for uid, study in locked.items() if uid in newest}
    if len(studies) != len(newest):
        raise _Retry()
    for uid, h in newest.items():
        study = studies[uid]
        # A study keeps the patient it was created for (_same_patient); one created meanwhile
        # for another patient is found here, and the rerun batch rejects the instance.
        patient = patients[_patient_key(h)]
        if patient.pk != study.patient_id:
            raise _Retry()
        study.patient = patient
        study.study_date, study.study_time, study.timezone_offset = h.study_date, h.study_time, h.timezone_offset
        # Whole values (dicom.header.MAX_VALUE_CHARS bounds them): never cut into another's.
        study.accession_number = h.accession_number
        study.description = h.study_description
        study.referring_physician = h.referring_physician
    return studies, {study.pk for study in locked.values()}


def _series(studies: dict[str, Study], headers: list[InstanceHeader]) -> dict[tuple[int, str], Series]:
    """Series of the batch under their (locked) studies, keyed by (study id, Series UID): those
    found, and those missing inserted. Series are only created under their study's lock, held
    here, so none can appear in between (one that did would break the unique constraint, and
    the batch would run again)."""
    firsts: dict[tuple[int, str], InstanceHeader] = {}
    for h in headers:
        firsts.setdefault((studies[h.study_instance_uid].pk, h.series_instance_uid), h)
    if not firsts:
        return {}
    # Every pair of the studies' ids and the Series UIDs; those not of the batch are left out.
    rows = _series_of.all([sorted({pk for pk, _ in firsts}), sorted({uid for _, uid in firsts})])
    found = {(s.study_id, s.series_uid): s for s in rows if (s.study_id, s.series_uid) in firsts}
    missing = [
        Series(
            study_id=study_id,
            series_uid=uid,
            number=h.series_number,
            modality=h.modality,
            description=h.series_description,
            body_part=h.body_part,
        )
        for (study_id, uid), h in firsts.items()
        if (study_id, uid) not in found
    ]
    if missing:  # their ids come back with the insert (RETURNING, PostgreSQL and SQLite ≥ 3.35)
        found.update({(s.study_id, s.series_uid): s for s in Series.objects.bulk_create(missing)})
    return found


def _common_prefix(prefix: str, key: str) -> str:
    """The longest "/"-ending prefix of both (`prefix` empty = none yet)."""
    folder = key.rpartition("/")[0] + "/"
    if not prefix:
        return folder
    common = []
    for a, b in zip(prefix.split("/"), folder.split("/"), strict=False):
        if a != b:
            break
        common.append(a)
    return "/".join(common).rstrip("/") + "/" if common else ""
