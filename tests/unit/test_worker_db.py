"""core/worker_db.py: Celery's Django fix-up, minus closing the database pool around each task."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from celery.fixups.django import DjangoFixup, DjangoWorkerFixup
from django.db import OperationalError, connection

from core.worker_db import OVERRIDDEN, PooledDjangoFixup, PooledWorkerFixup
from prizmed.celery import app


def test_the_hooks_it_replaces_are_still_celerys() -> None:
    # A Celery upgrade that renames them would silently bring back the closing around each task.
    for name in OVERRIDDEN:
        assert callable(vars(DjangoWorkerFixup).get(name)), f"DjangoWorkerFixup.{name} is gone"
        assert getattr(PooledWorkerFixup, name) is not getattr(DjangoWorkerFixup, name)


def test_the_app_installs_it_instead_of_celerys() -> None:
    fixups = app._fixups or []
    assert [type(f) for f in fixups if isinstance(f, DjangoFixup)] == [PooledDjangoFixup]
    fixup = next(f for f in fixups if isinstance(f, PooledDjangoFixup))
    assert isinstance(fixup.worker_fixup, PooledWorkerFixup)


def backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        row = cursor.fetchone()
    assert row is not None
    return int(row[0])


def task() -> Any:
    return SimpleNamespace(request=SimpleNamespace(is_eager=False))


def pool() -> Any:
    """The process's psycopg pool of the default database (None without one)."""
    return connection.pool  # type: ignore[attr-defined]  # PostgreSQL's wrapper only


def connections_made() -> int:
    """Connections the process's pool has opened to the server so far (psycopg_pool's stats)."""
    assert pool() is not None
    return int(pool().get_stats().get("connections_num", 0))


@pytest.mark.services  # the pool is PostgreSQL's
def test_tasks_reuse_the_pooled_sessions_until_a_connection_error(django_db_blocker: Any) -> None:
    # Outside any test transaction (tasks run in autocommit), and no table is touched.
    with django_db_blocker.unblock():
        tasks_then_a_connection_error()


def tasks_then_a_connection_error() -> None:
    assert connection.vendor == "postgresql"
    worker = PooledWorkerFixup(app)
    backend_pid()
    first, made = pool(), connections_made()
    for _ in range(5):  # five tasks, each run between the worker's two hooks
        worker.on_task_prerun(task())
        backend_pid()
        worker.on_task_postrun(task())
        assert connection.connection is None  # given back to the pool between tasks
    assert pool() is first and connections_made() == made  # no new session

    worker.on_task_failure(exception=ValueError("not the database's fault"))
    assert pool() is first
    worker.on_task_failure(exception=OperationalError("server closed the connection unexpectedly"))
    backend_pid()
    assert pool() is not first  # a fresh pool, with sessions of its own
