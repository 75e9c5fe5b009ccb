"""Celery tasks of ingest: thin adapters over studies.ingest.assembly and .expiry."""

from __future__ import annotations

from celery import shared_task

from studies.ingest.assembly import stream_assemble
from studies.ingest.expiry import ingest_expire


@shared_task(name="studies.expire_streams", acks_late=True)
def expire_streams() -> None:
    """Expire idle chunked streams, free their chunks, drop dead uploads (CELERY_BEAT_SCHEDULE)."""
    ingest_expire()


@shared_task(name="studies.assemble_stream", acks_late=True)
def assemble_stream(stream_pk: int, upload_id: str) -> None:
    """Assemble a completed chunked stream into its upload (studies/ingest/assembly.py)."""
    stream_assemble(stream_pk=stream_pk, upload_id=upload_id)
