"""Dispatching Celery tasks, with or without a broker.

With a broker (production) a task goes to the workers. Without one (embedded mode, `make run`)
it runs on a background thread of this process — the same task code, so an upload still ends
up indexed — one at a time, so SQLite sees a single writer from here.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from celery import Task, current_app
from django.conf import settings
from django.db import close_old_connections

log = logging.getLogger("core.tasks")
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


def start_embedded_beat(*, tick_s: float = 5.0, stop: threading.Event | None = None) -> threading.Thread | None:
    """Without a broker there is no `celery beat`: run CELERY_BEAT_SCHEDULE from this process.

    Entries must have a number of seconds (or a timedelta) as their schedule; each job runs on
    the same single task thread as everything else. Jobs are idempotent sweeps, so several
    server processes each running them is harmless.
    """
    if settings.CELERY_BROKER_URL or not settings.CELERY_BEAT_SCHEDULE:
        return None
    app = current_app
    app.loader.import_default_modules()  # runs autodiscovery, as a worker's start-up would
    schedule = dict(settings.CELERY_BEAT_SCHEDULE)
    due = dict.fromkeys(schedule, time.monotonic())
    stopped = stop or threading.Event()

    def loop() -> None:
        while not stopped.is_set():
            now = time.monotonic()
            for name, entry in schedule.items():
                if now >= due[name]:
                    every = entry["schedule"]
                    due[name] = now + (every.total_seconds() if isinstance(every, timedelta) else float(every))
                    try:
                        enqueue(app.tasks[entry["task"]], *entry.get("args", ()))
                    except Exception:  # one bad entry must not stop the others
                        log.exception("periodic job %s not started", name)
            stopped.wait(tick_s)

    thread = threading.Thread(target=loop, name="prizmed-beat", daemon=True)
    thread.start()
    return thread
