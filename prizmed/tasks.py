"""Dispatching Celery tasks, with or without a broker.

With a broker (production) a task goes to the workers. Without one (embedded mode, `make run`)
it runs on a background thread of this process — the same task code, so an upload still ends
up indexed — one at a time, so SQLite sees a single writer from here.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from celery import Task
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger("prizmed.tasks")
_local = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prizmed-task")


def enqueue(task: Task[Any, Any], *args: str | int) -> None:
    """Send a task; call it from `transaction.on_commit` so workers see the committed rows."""
    if settings.CELERY_BROKER_URL:
        task.delay(*args)
    else:
        _local.submit(_run_here, task, args)


def _run_here(task: Task[Any, Any], args: tuple[str | int, ...]) -> None:
    try:
        task(*args)
    except Exception:
        log.exception("task %s failed", task.name)
    finally:
        close_old_connections()
