"""Celery workers keep their database connection pool from task to task.

Celery's Django fix-up (celery/fixups/django.py) closes every database connection before and
after each task and, in a prefork child, closes the psycopg pool itself (``close_pool()``): with
PostgreSQL each task then opened new sessions, ~4 per upload and ~10 ms of server CPU each
(issue 19). Here the fix-up is kept for what it does well — ``django.setup()`` before the tasks
are imported, the model checks, dropping inherited connections when a child process starts —
but between tasks the connections go back to the pool instead:

- after a task, each connection is closed, which with a pool (``DATABASES[...]["OPTIONS"]["pool"]``)
  hands it back to the pool (Django's ``_close`` → ``putconn``); without a pool (SQLite,
  ``DB_POOL_MAX_SIZE=0``) that closes it, as Celery would;
- the pool checks a connection when it hands it out (``CONN_HEALTH_CHECKS``, psycopg's
  ``check_connection``), so one broken while idle is replaced, not given to a task;
- the pool is closed only on error: when a task fails with a connection-level error
  (``InterfaceError``/``OperationalError``) or giving a connection back fails.

It is installed as the app's fix-up (``Celery(fixups=[...])``) by subclassing Celery's own,
overriding its two per-task hooks by name; tests/unit/test_worker_db.py fails if a Celery
upgrade renames them, and tests/test_worker_pool.py counts the PostgreSQL sessions of a real
worker over 50 tasks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery import signals
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup
from django.db import InterfaceError, OperationalError, connections

if TYPE_CHECKING:
    from celery import Celery, Task

log = logging.getLogger("core.worker_db")

# The per-task hooks of Celery's DjangoWorkerFixup replaced here (pinned by a unit test).
OVERRIDDEN = ("on_task_prerun", "on_task_postrun")
# Errors after which a pool's connections are not trusted any more.
CONNECTION_ERRORS = (InterfaceError, OperationalError)


def pools_close() -> None:
    """Close every initialized connection and its pool (the next task opens a fresh pool)."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:  # a broken connection: the pool goes anyway
            log.debug("closing connection %s failed", conn.alias, exc_info=True)
        close_pool = getattr(conn, "close_pool", None)
        if close_pool is not None:
            try:
                close_pool()
            except KeyError:  # Django's close_pool when no pool was ever made
                pass


def connections_release() -> None:
    """Give each connection back to its pool (or close it when there is no pool). A connection
    that cannot be given back takes its pool down with it."""
    for conn in connections.all(initialized_only=True):
        try:
            conn.close()
        except Exception:
            log.warning("giving connection %s back failed: closing its pool", conn.alias, exc_info=True)
            pools_close()
            return


class PooledWorkerFixup(DjangoWorkerFixup):  # type: ignore[misc]  # Celery is untyped
    """Celery's worker fix-up, minus closing the database around every task."""

    def on_task_prerun(self, sender: Task[Any, Any], **kwargs: Any) -> None:
        """Nothing to close: the previous task gave its connection back to the pool."""

    def on_task_postrun(self, sender: Task[Any, Any], **kwargs: Any) -> None:
        if getattr(sender.request, "is_eager", False):
            return
        connections_release()
        self.close_cache()

    def install(self) -> PooledWorkerFixup:
        super().install()
        signals.task_failure.connect(self.on_task_failure, weak=False)
        return self

    def on_task_failure(self, exception: BaseException | None = None, **kwargs: Any) -> None:
        """A task that lost its connection (server restart, network): start a fresh pool."""
        if isinstance(exception, CONNECTION_ERRORS):
            log.warning("task failed on a database connection error: closing the pool")
            pools_close()


class PooledDjangoFixup(DjangoFixup):  # type: ignore[misc]  # Celery is untyped
    """Celery's Django fix-up with PooledWorkerFixup as its worker part."""

    # Made on first use, as Celery's own: building it reads the app's configuration, which is
    # not loaded yet when the app (and so this fix-up) is created.
    @property
    def worker_fixup(self) -> DjangoWorkerFixup:
        made: DjangoWorkerFixup | None = self._worker_fixup  # type: ignore[has-type]  # set by Celery
        if made is None:
            made = self._worker_fixup = PooledWorkerFixup(self.app)
        return made

    @worker_fixup.setter
    def worker_fixup(self, value: DjangoWorkerFixup) -> None:
        self._worker_fixup = value


def fixup(app: Celery) -> PooledDjangoFixup:
    """The entry of ``Celery(fixups=["core.worker_db:fixup"])``: installs PooledDjangoFixup."""
    fixed = PooledDjangoFixup(app)
    fixed.install()
    return fixed
