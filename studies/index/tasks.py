"""Celery tasks of indexing: thin adapters that take ids and call a service."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from celery import Task, shared_task
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from core.tasks import enqueue
from studies.index.recovery import uploads_stalled_claim
from studies.index.services import upload_fail, upload_index_begin, upload_index_part, uploads_index_queued

log = logging.getLogger("prizmed.indexing")
T = TypeVar("T")


# A database or disk that fails for a while is retried with backoff (1, 2, 4, 8, 16 s), through
# the broker, or without one (embedded mode) by waiting on the task thread; after that the
# upload fails cleanly.
TRANSIENT = (DatabaseError, OSError)
RETRIES = 5
GIVE_UP = "The upload could not be indexed: the database or storage kept failing."


@shared_task(bind=True, name="studies.index_upload", acks_late=True, reject_on_worker_lost=True, max_retries=RETRIES)
def index_upload(self: Task[Any, Any], upload_id: str) -> None:
    """Index a small upload at once, with the other small uploads queued meanwhile; split a big
    one into parts, each a task of its own, so several workers share it."""
    if _retrying(self, upload_id, lambda: uploads_index_queued(upload_id=upload_id)):
        return
    for start, stop in upload_index_begin(upload_id=upload_id):
        enqueue(index_upload_part, upload_id, start, stop)


@shared_task(
    bind=True, name="studies.index_upload_part", acks_late=True, reject_on_worker_lost=True, max_retries=RETRIES
)
def index_upload_part(self: Task[Any, Any], upload_id: str, start: int, stop: int) -> None:
    _retrying(self, upload_id, lambda: upload_index_part(upload_id=upload_id, start=start, stop=stop))


def _retrying(task: Task[Any, Any], upload_id: str, work: Callable[[], T]) -> T:
    """``work()``, tried again on a transient failure; after RETRIES the upload fails."""
    embedded = task.request.called_directly  # run by core.tasks on its thread: no broker
    for attempt in range(RETRIES + 1 if embedded else 1):
        try:
            return work()
        except TRANSIENT as exc:
            tries = task.request.retries + attempt
            if tries >= RETRIES:
                log.exception("indexing upload %s failed for good", upload_id)
                upload_fail(upload_id=upload_id, error=GIVE_UP)
                raise
            if not embedded:
                raise task.retry(exc=exc, countdown=2**tries) from exc
            log.warning("indexing upload %s: %s; trying again in %d s", upload_id, exc, 2**tries)
            time.sleep(2**tries)
    raise AssertionError("unreachable")


@shared_task(name="studies.index_stalled", acks_late=True)
def index_stalled() -> int:
    """Send the indexing task again for uploads no indexing moved for INDEX_STALL_SECONDS: their
    task was lost (studies/index/recovery.py; CELERY_BEAT_SCHEDULE). Returns how many."""
    stalled = uploads_stalled_claim(before=timezone.now() - timedelta(seconds=settings.INDEX_STALL_SECONDS))
    for upload_id in stalled:
        enqueue(index_upload, upload_id)
    return len(stalled)
