"""Celery app. With no broker configured (embedded mode) tasks run in this process instead."""

from __future__ import annotations

import os

from celery import Celery, signals

from core.startup_gc import worker_heap_freeze

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")

# Celery's Django fix-up, except that workers keep their database pool across tasks (core/worker_db.py).
app = Celery("prizmed", fixups=["core.worker_db:fixup"])
# The default app of every thread too (Celery's "current" app is per thread): core.tasks reaches
# it through celery.current_app from the embedded runner's and beat's threads.
app.set_default()
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# A pool process keeps what the worker loaded out of the collector's walk (core/startup_gc.py).
signals.worker_process_init.connect(worker_heap_freeze, weak=False)
