"""Deleting studies and the stored objects whose rows are gone.

Bytes are removed crash-safely: the transaction that removes rows also records their object
keys in PendingObjectDeletion; after commit the objects and then those rows are deleted. A
crash in between leaves the pending rows, which `pending_objects_sweep` (a beat task) finishes.
So there are never rows pointing at missing bytes, nor bytes no row accounts for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.audit import Actor, Subject, audit_append
from records.services import record_study_deleted
from studies.models import Instance, PendingObjectDeletion, Series, Study
from studies.objects import storage

log = logging.getLogger("prizmed.studies")

STUDY_DELETE = "study.delete"
# The sweep leaves recent rows alone: their own after-commit step is most likely running now.
SWEEP_GRACE = timedelta(minutes=1)
SWEEP_BATCH = 1000


@dataclass(frozen=True)
class Refusal:
    """Why a delete was refused, as the audit log records it."""

    outcome: str  # "forbidden", "not-found", "invalid"
    status_code: int


def objects_delete_on_commit(keys: Iterable[str]) -> None:
    """Inside a transaction that drops the rows of these objects: delete them once it commits."""
    keys = list(keys)
    if not keys:
        return
    PendingObjectDeletion.objects.bulk_create(
        [PendingObjectDeletion(object_key=key) for key in keys], ignore_conflicts=True, batch_size=1000
    )
    transaction.on_commit(lambda: objects_purge(keys=keys))


def objects_purge(*, keys: list[str]) -> None:
    """Delete the objects, then their pending rows: a crash in between is finished later."""
    store = storage()
    for key in keys:
        store.delete(key)
    for start in range(0, len(keys), SWEEP_BATCH):
        PendingObjectDeletion.objects.filter(object_key__in=keys[start : start + SWEEP_BATCH]).delete()


def pending_objects_sweep(*, older_than: timedelta = SWEEP_GRACE) -> int:
    """Finish deletions a crash left behind; returns how many objects it removed."""
    cutoff = timezone.now() - older_than
    done = 0
    while keys := list(
        PendingObjectDeletion.objects.filter(created__lt=cutoff).values_list("object_key", flat=True)[:SWEEP_BATCH]
    ):
        objects_purge(keys=keys)
        done += len(keys)
    if done:
        log.info("finished %d pending object deletions", done)
    return done


def study_delete(*, actor: Actor, study_uid: str) -> Subject | None:
    """Permanently delete a study of the actor's organization: rows, bytes (after commit), its
    record event and the audit entry, in one transaction. None if there is no such study
    (audited as not-found).

    The study row is locked first, so a concurrent indexing of the same study either finishes
    before (and its instances are deleted too) or runs after (and starts a new study)."""
    with transaction.atomic():
        study = (
            Study.objects.select_for_update()
            .filter(organization=actor.organization, study_uid=study_uid)
            .select_related("patient")
            .first()
        )
        if study is None:
            study_delete_refused(actor=actor, study_uid=study_uid, refusal=Refusal("not-found", 404))
            return None
        instances = Instance.objects.filter(series__study=study)
        keys = list(instances.values_list("object_key", flat=True))
        totals = Series.objects.filter(study=study).aggregate(instances=Sum("instance_count"), bytes=Sum("bytes"))
        subject = Subject(
            study_uid=study.study_uid,
            patient_id=study.patient.patient_id,
            series_count=study.series_count,
            instance_count=totals["instances"] or 0,
            bytes=totals["bytes"] or 0,
        )
        objects_delete_on_commit(keys)
        instances.delete()
        Series.objects.filter(study=study).delete()
        study.delete()
        record_study_deleted(
            organization_id=actor.organization.pk, study_uid=subject.study_uid, patient_id=subject.patient_id
        )
        audit_append(action=STUDY_DELETE, outcome="success", status_code=200, actor=actor, subject=subject)
    return subject


def study_delete_refused(*, actor: Actor, study_uid: str, refusal: Refusal) -> None:
    """Audit a refused delete (role, unknown study, malformed UID): nothing changes but the log."""
    audit_append(
        action=STUDY_DELETE,
        outcome=refusal.outcome,
        status_code=refusal.status_code,
        actor=actor,
        subject=Subject(study_uid=study_uid),
    )
