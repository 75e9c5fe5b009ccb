"""Celery tasks of the studies app: thin adapters that take ids and call a service."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="studies.index_upload", acks_late=True, reject_on_worker_lost=True)
def index_upload(upload_id: str) -> None:
    """Index the stored instances of an upload (studies/indexing.py)."""
    from studies.indexing import upload_index

    upload_index(upload_id=upload_id)
