"""Deleting stored objects whose rows are gone, crash-safely.

The transaction that removes rows also records their object keys in PendingObjectDeletion;
after commit the objects and then those rows are deleted. A crash in between leaves the pending
rows, which `pending_objects_sweep` (a beat task) finishes. So there are never rows pointing at
missing bytes, nor bytes no row accounts for.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from studies.models import PendingObjectDeletion
from studies.objects.store import storage

log = logging.getLogger("prizmed.studies")

# The sweep leaves recent rows alone: their own after-commit step is most likely running now.
SWEEP_GRACE = timedelta(minutes=1)
SWEEP_BATCH_KEYS = 1000


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
    """Delete the objects (batched: one request per 1,000 on S3), then their pending rows: a
    crash in between is finished later."""
    storage().delete_many(keys)
    for start in range(0, len(keys), SWEEP_BATCH_KEYS):
        PendingObjectDeletion.objects.filter(object_key__in=keys[start : start + SWEEP_BATCH_KEYS]).delete()


def pending_objects_sweep(*, older_than: timedelta = SWEEP_GRACE) -> int:
    """Finish deletions a crash left behind; returns how many objects it removed."""
    cutoff = timezone.now() - older_than
    done = 0
    while keys := list(
        PendingObjectDeletion.objects.filter(created__lt=cutoff).values_list("object_key", flat=True)[:SWEEP_BATCH_KEYS]
    ):
        objects_purge(keys=keys)
        done += len(keys)
    if done:
        log.info("finished %d pending object deletions", done)
    return done
