"""Celery tasks of the studies app: thin adapters that take ids and call a service."""

from __future__ import annotations

from celery import shared_task

from prizmed.tasks import enqueue
from studies.indexing import upload_index_begin, upload_index_part
from studies.services import pending_objects_sweep


@shared_task(name="studies.index_upload", acks_late=True, reject_on_worker_lost=True)
def index_upload(upload_id: str) -> None:
    """Index an upload: its first part here, the others as tasks of their own (other workers)."""
    parts = upload_index_begin(upload_id=upload_id)
    for start, stop in parts[1:]:
        enqueue(index_upload_part, upload_id, start, stop)
    if parts:
        upload_index_part(upload_id=upload_id, start=parts[0][0], stop=parts[0][1])


@shared_task(name="studies.index_upload_part", acks_late=True, reject_on_worker_lost=True)
def index_upload_part(upload_id: str, start: int, stop: int) -> None:
    upload_index_part(upload_id=upload_id, start=start, stop=stop)


@shared_task(name="studies.sweep_pending_objects", acks_late=True)
def sweep_pending_objects() -> None:
    """Finish object deletions a crash interrupted (CELERY_BEAT_SCHEDULE)."""
    pending_objects_sweep()


@shared_task(name="studies.expire_streams", acks_late=True)
def expire_streams() -> None:
    """Expire idle chunked streams, free their chunks, drop dead uploads (CELERY_BEAT_SCHEDULE)."""
    # Imported here: studies.streams dispatches index_upload from this module (import cycle).
    from studies.streams import ingest_expire

    ingest_expire()
