"""Celery task of ingest: a thin adapter over studies.ingest.streams."""

from __future__ import annotations

from celery import shared_task

from studies.ingest.streams import ingest_expire


@shared_task(name="studies.expire_streams", acks_late=True)
def expire_streams() -> None:
    """Expire idle chunked streams, free their chunks, drop dead uploads (CELERY_BEAT_SCHEDULE)."""
    ingest_expire()
