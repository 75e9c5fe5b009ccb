"""Celery app. With no broker configured (embedded mode) tasks run in this process instead."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")

app = Celery("prizmed")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
