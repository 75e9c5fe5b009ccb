"""Celery task of object storage: a thin adapter over studies.objects.deletion."""

from __future__ import annotations

from celery import shared_task

from studies.objects.deletion import pending_objects_sweep


@shared_task(name="studies.sweep_pending_objects", acks_late=True)
def sweep_pending_objects() -> None:
    """Finish object deletions a crash interrupted (CELERY_BEAT_SCHEDULE)."""
    pending_objects_sweep()
