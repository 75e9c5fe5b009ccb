"""The transactional outbox: a task whose loss would lose data is recorded in the caller's
transaction and sent after it commits; a periodic sweep sends again whatever is still recorded.

Why: `transaction.on_commit(task.delay)` runs after the commit, so a broker that is down at
that moment lost the task while the data said `queued` (issue 10 item 1). Here the commit
holds the intent; the broker outage only delays it. Delivery is at least once (a crash between
the broker's acceptance and the row's delete sends it again), so the tasks sent this way must be
idempotent; `studies.index_upload` is (it only moves a `queued` upload on).

The on-commit send runs on a dispatcher thread of the process, so the request that committed
is answered at once whatever the broker does. It takes no lock: it publishes the task it was
handed and then deletes the row in one statement (one upload, one DELETE, instead of a locking
transaction around the publish). The sweeps lock the rows they send with SKIP LOCKED, so two
sweeps never send one twice; a sweep only takes rows older than OUTBOX_RESEND_AFTER_SECONDS, so
it meets an on-commit send only when that one is stuck behind a broker outage, and the task then
goes twice, which its idempotence allows.
Without a broker (embedded mode) the task runs on this process's task thread and its row is
deleted once it has run; a process that dies first leaves the row for the sweep.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from celery import Task, current_app, shared_task
from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import F
from django.utils import timezone

from core.tasks import enqueue
from outbox.models import OutboxTask

log = logging.getLogger("prizmed.outbox")
SWEEP_BATCH = 500
SEND_TIMEOUT_S = 2.0
# Sends run here, not on the request's thread: a broker outage never holds a 202 back.
_dispatcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prizmed-outbox")
_running_here: set[int] = set()  # embedded mode: rows whose task is on this process's task thread
_running_lock = threading.Lock()


def outbox_add(task: Task[Any, Any], *args: str | int) -> None:
    """Record ``task(*args)`` in the current transaction and send it once that commits.
    Call inside ``transaction.atomic()``: the row commits (or rolls back) with the caller's data."""
    row = OutboxTask.objects.create(task=task.name, args=list(args))
    transaction.on_commit(lambda: _dispatcher.submit(_send_then_release, row), robust=True)


def _send_then_release(row: OutboxTask) -> None:
    try:
        _send_committed(row)
    finally:
        close_old_connections()  # this thread's database connection goes back (to the pool)


def _send_committed(row: OutboxTask) -> None:
    """The on-commit send of a row just committed, without a lock (see above): published (or,
    without a broker, started here), then deleted; a failure leaves the row for the sweep."""
    if not settings.CELERY_BROKER_URL:
        _start_here(row)  # the row goes once the task has run (run_recorded)
        return
    try:
        _publish(row)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the row for the sweep
        log.warning("outbox task %s not sent yet: %s", row.pk, exc)
        _failed(row.pk, exc)
        return
    try:
        OutboxTask.objects.filter(pk=row.pk).delete()
    except Exception:  # the task is sent; the sweep sends the row again, harmlessly
        log.warning("sent outbox task %s kept its row", row.pk, exc_info=True)


def outbox_send(*, pk: int) -> str:
    """Send one recorded task unless another sweep has it. Returns ``"sent"`` (or, without
    a broker, started here), ``"busy"`` (sent already, or another dispatcher has it) or
    ``"failed"``: a broker or database that fails leaves the row for the sweep (logged, never raised)."""
    try:
        with transaction.atomic():
            row = OutboxTask.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None:
                return "busy"
            if not settings.CELERY_BROKER_URL:
                return "sent" if _start_here(row) else "busy"
            _publish(row)
            row.delete()
        return "sent"
    except Exception as exc:  # noqa: BLE001 - any failure leaves the row for the sweep
        log.warning("outbox task %s not sent yet: %s", pk, exc)
        _failed(pk, exc)
        return "failed"


def _publish(row: OutboxTask) -> None:
    """Hand the task to the broker, failing within ~SEND_TIMEOUT_S when it is unreachable
    (Celery's own publish retries for ~6 s per message; the sweep is the retry here)."""
    with current_app.pool.acquire(block=True, timeout=SEND_TIMEOUT_S) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0.2, interval_step=0.2, timeout=SEND_TIMEOUT_S)
        current_app.send_task(row.task, args=row.args, connection=conn, retry=False)


def _failed(pk: int, exc: Exception) -> None:
    try:
        OutboxTask.objects.filter(pk=pk).update(attempts=F("attempts") + 1, last_error=str(exc)[:1000])
    except Exception:  # the database may be what failed: the row stays either way
        log.debug("could not record the failed send of %s", pk, exc_info=True)


def outbox_sweep(*, older_than_s: float) -> int:
    """Send the tasks recorded more than ``older_than_s`` seconds ago and still not sent (their
    on-commit send failed, or its process died). Stops at the first failure: the broker is down,
    the next sweep tries again. Returns how many were sent."""
    before = timezone.now() - timedelta(seconds=older_than_s)
    with _running_lock:
        busy = set(_running_here)
    pending = OutboxTask.objects.filter(created__lt=before).exclude(pk__in=busy).order_by("pk")
    sent = 0
    for pk in list(pending.values_list("pk", flat=True)[:SWEEP_BATCH]):
        outcome = outbox_send(pk=pk)
        if outcome == "failed":
            break
        sent += outcome == "sent"
    return sent


def _start_here(row: OutboxTask) -> bool:
    """Embedded mode: queue the task on this process's task thread, once."""
    with _running_lock:
        if row.pk in _running_here:
            return False
        _running_here.add(row.pk)
    enqueue(run_recorded, row.pk, row.task, *row.args)
    return True


@shared_task(name="outbox.run_recorded")
def run_recorded(pk: int, name: str, *args: str | int) -> None:
    """Embedded mode: run a recorded task here, then delete its row; a task that raised keeps
    its row, so the sweep runs it again (as a broker redelivers an unacknowledged task)."""
    try:
        current_app.tasks[name](*args)
    except Exception as exc:
        _failed(pk, exc)  # kept: the sweep runs it again
        raise
    else:
        OutboxTask.objects.filter(pk=pk).delete()
    finally:
        with _running_lock:
            _running_here.discard(pk)
