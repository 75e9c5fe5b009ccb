"""Celery task of the outbox: the periodic sweep (CELERY_BEAT_SCHEDULE; embedded mode runs it in-process)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from outbox.dispatch import outbox_sweep


@shared_task(name="outbox.sweep")
def sweep() -> int:
    """Send what the on-commit dispatch could not (broker down, process died)."""
    return outbox_sweep(older_than_s=settings.OUTBOX_RESEND_AFTER_SECONDS)
