"""Celery tasks of the accounts app: thin adapters over its services."""

from __future__ import annotations

from celery import shared_task

from accounts.usage import usage_prune


@shared_task(name="accounts.prune_usage")
def prune_usage() -> int:
    """Apply the usage rows' retention (CELERY_BEAT_SCHEDULE runs it hourly)."""
    return usage_prune()
