"""A task recorded in the same transaction as the data it will work on, until the broker has it."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


class OutboxTask(models.Model):
    """One task to send: its Celery name and JSON arguments. The row is deleted once the broker
    accepted the message (or, without a broker, once the task ran in this process)."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    created = models.DateTimeField(default=timezone.now, db_index=True)
    attempts = models.PositiveIntegerField(default=0)  # sends that failed (broker unreachable)
    last_error = models.TextField(blank=True)

    def __str__(self) -> str:
        return f"{self.task}{tuple(self.args)}"
