"""Celery tasks of indexing: thin adapters that take ids and call a service."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from django.db import DatabaseError

from core.tasks import enqueue
from studies.index.services import upload_fail, upload_index_begin, upload_index_part

log = logging.getLogger("prizmed.indexing")


# A database or disk that fails for a while is retried with backoff (1, 2, 4, 8, 16 s), through
# the broker, or without one (embedded mode) by waiting on the task thread; after that the
# upload fails cleanly.
TRANSIENT = (DatabaseError, OSError)
RETRIES = 5
GIVE_UP = "The upload could not be indexed: the database or storage kept failing."


@shared_task(name="studies.index_upload", acks_late=True, reject_on_worker_lost=True)
def index_upload(upload_id: str) -> None:
    """Split an upload into parts, each a task of its own, so several workers share it."""
    for start, stop in upload_index_begin(upload_id=upload_id):
        enqueue(index_upload_part, upload_id, start, stop)


@shared_task(
    bind=True, name="studies.index_upload_part", acks_late=True, reject_on_worker_lost=True, max_retries=RETRIES
)
def index_upload_part(self: Task[Any, Any], upload_id: str, start: int, stop: int) -> None:
    embedded = self.request.called_directly  # run by core.tasks on its thread: no broker
    for attempt in range(RETRIES + 1 if embedded else 1):
        try:
            upload_index_part(upload_id=upload_id, start=start, stop=stop)
            return
        except TRANSIENT as exc:
            tries = self.request.retries + attempt
            if tries >= RETRIES:
                log.exception("indexing upload %s failed for good", upload_id)
                upload_fail(upload_id=upload_id, error=GIVE_UP)
                raise
            if not embedded:
                raise self.retry(exc=exc, countdown=2**tries) from exc
            log.warning("indexing upload %s: %s; trying again in %d s", upload_id, exc, 2**tries)
            time.sleep(2**tries)
