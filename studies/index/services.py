"""Indexing the stored instances of an upload into Patient / Study / Series / Instance (API.md §2).

An upload is indexed in parts of PART_POSITIONS positions, each its own task, so several workers
share a big upload. A part reads headers outside any transaction (the slow step) and writes
each batch of BATCH_ITEMS items in one transaction. Every step is idempotent: a batch re-locks
its items and skips those no longer `stored`, so a task run again after a crash or run twice
at once indexes every instance exactly once.

Lock order, the same everywhere (no deadlocks): upload, its items, patients by Patient ID,
studies by Study Instance UID (the batch's own and those its re-sent instances come from),
then instances. Counts and bytes of a study and its series
change only under the study's row lock, so they stay exact with any number of workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Organization
from dicom.header import InstanceHeader, InvalidInstance, read_header
from studies.index.dicomweb_attributes import INSTANCE_FIELDS, SERIES_FIELDS, dicomweb_attributes_set
from studies.index.item_outcomes import item_outcomes_write
from studies.index.record_events import record_patient_changed, record_study_changed, record_study_deleted
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
RETRIES = 5  # a batch that lost a race (unique insert, deleted study, deadlock) runs again
TOO_LARGE = "study-too-large"
MISSING = "missing-object"
FAILED = "indexing-failed"
STUDY_MISMATCH = "study-mismatch"
PATIENT_MISMATCH = "patient-mismatch"


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
class _Batch:
    """What one transaction writes: filled while walking the batch's items in order."""

    organization: Organization
    limit: int | None  # the plan's max study bytes
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
    study_uids: set[str] = field(default_factory=set)
    # Series outside this batch that re-sent instances left: id -> (instances, bytes) to subtract.
    moved_out: dict[int, tuple[int, int]] = field(default_factory=dict)
    other_studies: set[int] = field(default_factory=set)  # their studies, recounted too


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
        batch = items[first : first + BATCH_ITEMS]
        _index_batch(upload, [(item, _in_required_study(upload, _read(item))) for item in batch])
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
        upload = Upload.objects.select_for_update().filter(pk=upload_id, state=UploadState.INDEXING).first()
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
        with storage().open(item.object_key) as fp:
            return read_header(fp, item.file_meta())
    except InvalidInstance as exc:
        return Rejection(exc.code, exc.message, exc.uids)
    except FileNotFoundError:
        return Rejection(MISSING, "the stored instance is missing")


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
) -> list[tuple[UploadItem, InstanceHeader | Rejection]]:
    """Patient consistency (docs/indexing.md): a study belongs to the patient of the first
    instance indexed into it; a later instance with another Patient ID is rejected
    (`patient-mismatch`) and the study left as it was. Read without a lock: a study created
    meanwhile with another patient is caught under the lock (_studies) and the batch rerun."""
    uids = {h.study_instance_uid for _, h in parsed if isinstance(h, InstanceHeader)}
    rows = Study.objects.filter(organization=organization, study_uid__in=uids)
    owners: dict[str, tuple[str, str]] = {
        uid: (patient_id, study_uid)
        for uid, patient_id, study_uid in rows.values_list("study_uid", "patient__patient_id", "patient__study_uid")
    }
    checked: list[tuple[UploadItem, InstanceHeader | Rejection]] = []
    for item, header in parsed:
        if isinstance(header, InstanceHeader):
            owner = owners.setdefault(header.study_instance_uid, _patient_key(header))
            if owner != _patient_key(header):
                reason = f"Patient ID {header.patient_id!r} differs from {owner[0]!r}, the patient of its study"
                header = _rejected(header, PATIENT_MISMATCH, reason)
        checked.append((item, header))
    return checked


def _index_batch(upload: Upload, parsed: list[tuple[UploadItem, InstanceHeader | Rejection]]) -> None:
    for attempt in range(RETRIES):
        try:
            with transaction.atomic():
                _write_batch(upload, parsed)
            return
        except (IntegrityError, DatabaseError, _Retry):
            # Lost a race: a concurrent copy inserted the same row, a study was deleted under
            # us, or PostgreSQL broke a deadlock. The next attempt sees the committed state.
            if attempt == RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def _write_batch(upload: Upload, parsed: list[tuple[UploadItem, InstanceHeader | Rejection]]) -> None:
    if Upload.objects.select_for_update().filter(pk=upload.pk).values_list("pk").first() is None:
        return  # the upload was removed meanwhile (its organization deleted): nothing to index
    live = set(
        UploadItem.objects.select_for_update()
        .filter(pk__in=[item.pk for item, _ in parsed], state=ItemState.STORED)
        .values_list("pk", flat=True)
    )
    parsed = [(item, header) for item, header in parsed if item.pk in live]
    if not parsed:
        return
    batch = _Batch(organization=upload.organization, limit=upload.organization.plan.max_study_bytes)
    parsed = _same_patient(batch.organization, parsed)
    headers = [header for _, header in parsed if isinstance(header, InstanceHeader)]
    sop_uids = [h.sop_instance_uid for h in headers]
    # The studies re-sent instances would leave are locked with the batch's own, in UID order,
    # never after the instances: two batches moving instances opposite ways would deadlock.
    sources = set(
        Instance.objects.filter(organization=batch.organization, sop_uid__in=sop_uids).values_list(
            "series__study__study_uid", flat=True
        )
    )
    patients = _patients(batch, headers)
    studies, locked = _studies(batch.organization, headers, patients, batch.now, sources)
    batch.series = _series(studies, headers)
    batch.existing = {
        instance.sop_uid: instance
        for instance in Instance.objects.select_for_update()
        .filter(organization=batch.organization, sop_uid__in=sop_uids)
        .select_related("series")
    }
    if any(instance.series.study_id not in locked for instance in batch.existing.values()):
        raise _Retry()  # one moved (or arrived) since `sources` was read: start again
    for item, header in parsed:
        if isinstance(header, Rejection):
            _reject(batch, item, header)
        else:
            _place(batch, item, header, studies[header.study_instance_uid])
    _write(batch, upload, studies)


def _reject(batch: _Batch, item: UploadItem, rejection: Rejection) -> None:
    item.state, item.reason_code, item.reason = ItemState.REJECTED, rejection.code, rejection.reason[:300]
    item.replaced = False
    # Every rejection names its instance: as read, else as the File Meta group named it.
    sop, item.study_instance_uid, item.series_instance_uid = rejection.uids
    item.sop_instance_uid = sop or item.media_storage_sop_instance_uid
    batch.rejected.append(item)
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
    dicomweb_attributes_set(instance=instance, series=target, study=study, header=header)
    target.instance_count += 1
    target.bytes += item.size
    target.storage_prefix = _common_prefix(target.storage_prefix, item.object_key)
    study.bytes += item.size
    batch.study_uids.add(study.study_uid)
    item.state, item.sop_instance_uid = ItemState.INDEXED, header.sop_instance_uid
    item.study_instance_uid, item.series_instance_uid = header.study_instance_uid, header.series_instance_uid
    batch.indexed.append(item)


def _write(batch: _Batch, upload: Upload, studies: dict[str, Study]) -> None:
    Instance.objects.bulk_create(batch.created.values(), batch_size=500)
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
    Series.objects.bulk_update(batch.series.values(), ["instance_count", "bytes", "storage_prefix", *SERIES_FIELDS])
    others = Study.objects.select_for_update().filter(pk__in=batch.other_studies - {s.pk for s in studies.values()})
    touched = [*studies.values(), *others]
    Series.objects.filter(study__in=touched, instance_count=0).delete()
    for study in sorted(touched, key=lambda s: s.study_uid):
        was_live = study.instance_count > 0  # not changed in memory: the value read under the lock
        _recount(study)
        if study.instance_count == 0:  # every instance rejected, or moved to another study
            study.delete()
            if was_live:
                record_study_deleted(
                    organization_id=study.organization_id,
                    study_uid=study.study_uid,
                    patient_id=study.patient.patient_id,
                )
            continue
        study.last_received = batch.now
        study.save()
        record_study_changed(study=study)
    item_outcomes_write([*batch.indexed, *batch.rejected])
    objects_delete_on_commit(batch.doomed_keys)
    # The upload row is locked by this transaction: read-merge-write of its UID list is safe.
    known = Upload.objects.values_list("study_uids", flat=True).get(pk=upload.pk)
    Upload.objects.filter(pk=upload.pk).update(
        instances_indexed=F("instances_indexed") + len(batch.indexed),
        instances_rejected=F("instances_rejected") + len(batch.rejected),
        study_uids=[*known, *sorted(batch.study_uids - set(known))],
        updated=batch.now,
    )


def _recount(study: Study) -> None:
    """Study totals from its series rows (a handful), never from its instances."""
    rows = list(Series.objects.filter(study=study).values_list("modality", "instance_count", "bytes"))
    study.series_count = len(rows)
    study.instance_count = sum(count for _, count, _ in rows)
    study.bytes = sum(size for _, _, size in rows)
    study.modalities = sorted({modality for modality, _, _ in rows if modality})


def _patients(batch: _Batch, headers: list[InstanceHeader]) -> dict[tuple[str, str], Patient]:
    """Patients of the batch by _patient_key, created or locked; demographics follow the
    newest instance."""
    organization, now = batch.organization, batch.now
    newest = {_patient_key(h): h for h in headers}
    Patient.objects.bulk_create(
        [
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
            for h in newest.values()
        ],
        ignore_conflicts=True,
    )
    named = Q(patient_id__in=sorted(pid for pid, _ in newest if pid), study_uid="")
    unnamed = Q(patient_id="", study_uid__in=sorted(uid for pid, uid in newest if not pid))
    patients = {
        (p.patient_id, p.study_uid): p
        for p in Patient.objects.select_for_update()
        .filter(named | unnamed, organization=organization)
        .order_by("patient_id", "study_uid")
    }
    for key, h in sorted(newest.items()):
        patient = patients.get(key)
        if patient is None:
            raise _Retry()
        demographics = (h.patient_name, h.patient_birth_date, h.patient_sex)
        if patient.created == now:  # inserted by this transaction (its timestamp is ours)
            record_patient_changed(patient=patient)
        elif demographics != (patient.name, patient.birth_date, patient.sex):
            patient.name, patient.birth_date, patient.sex = demographics
            patient.updated = now
            patient.save(update_fields=["name", "birth_date", "sex", "updated"])
            record_patient_changed(patient=patient)
    return patients


def _studies(
    organization: Organization,
    headers: list[InstanceHeader],
    patients: dict[tuple[str, str], Patient],
    now: datetime,
    sources: set[str],
) -> tuple[dict[str, Study], set[int]]:
    """Studies of the batch, created or locked, and the ids of every study locked: the batch's
    and the ``sources`` (in one UID order). Descriptive fields follow the newest instance. A
    study deleted between create and lock makes the batch run again."""
    newest = {h.study_instance_uid: h for h in headers}
    Study.objects.bulk_create(
        [
            Study(
                organization=organization,
                patient=patients[_patient_key(h)],
                study_uid=uid,
                first_received=now,  # the batch's time, as last_received: first ≤ last always
                last_received=now,
            )
            for uid, h in newest.items()
        ],
        ignore_conflicts=True,
    )
    locked = {
        s.study_uid: s
        for s in Study.objects.select_for_update()
        .filter(organization=organization, study_uid__in=sorted(newest.keys() | sources))
        .order_by("study_uid")
    }
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
    """Series of the batch under their (locked) studies, keyed by (study id, Series UID)."""
    firsts: dict[tuple[int, str], InstanceHeader] = {}
    for h in headers:
        firsts.setdefault((studies[h.study_instance_uid].pk, h.series_instance_uid), h)
    Series.objects.bulk_create(
        [
            Series(
                study_id=study_id,
                series_uid=uid,
                number=h.series_number,
                modality=h.modality,
                description=h.series_description,
                body_part=h.body_part,
            )
            for (study_id, uid), h in firsts.items()
        ],
        ignore_conflicts=True,
    )
    if not firsts:
        return {}  # an empty Q() matches every row: every organization's series
    query = Q()
    for study_id, uid in firsts:
        query |= Q(study_id=study_id, series_uid=uid)
    return {(s.study_id, s.series_uid): s for s in Series.objects.filter(query)}


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
