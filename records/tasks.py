"""Celery tasks of the records app: thin adapters over records.services."""

from __future__ import annotations

from celery import shared_task

from records.services import events_prune


@shared_task(name="records.prune_events")
def prune_events() -> int:
    """Apply the event log's retention (CELERY_BEAT_SCHEDULE runs it hourly)."""
    return events_prune()
