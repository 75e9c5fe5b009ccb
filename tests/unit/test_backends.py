"""core.backends: which failures are an unreachable backend (503), followed along the cause chain."""

from __future__ import annotations

import django.db
import kombu.exceptions
import psycopg_pool
import pytest
import redis.exceptions

from core.backends import unreachable_backend
from core.errors import server_failure


@pytest.mark.parametrize(
    ("exc", "backend"),
    [
        (django.db.OperationalError("connection refused"), "database"),
        (django.db.InterfaceError("connection already closed"), "database"),
        (psycopg_pool.PoolTimeout("couldn't get a connection after 3.00 sec"), "database"),
        (redis.exceptions.ConnectionError("Error 111 connecting"), "redis"),
        (redis.exceptions.TimeoutError("Timeout reading"), "redis"),
        (kombu.exceptions.OperationalError("Error 111 connecting"), "broker"),
        (ValueError("a bug"), None),
        (None, None),
    ],
)
def test_it_names_the_unreachable_backend(exc: BaseException | None, backend: str | None) -> None:
    assert unreachable_backend(exc) == backend


def test_it_follows_the_cause_chain() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("refused")
        except redis.exceptions.ConnectionError as inner:
            raise RuntimeError("wrapped by a library") from inner
    except RuntimeError as outer:
        assert unreachable_backend(outer) == "redis"
        error = server_failure()  # the exception being handled
    assert (error.status, error.slug, error.extra) == (503, "backend-unavailable", {"backend": "redis"})
    assert ("Retry-After", "5") in error.headers


def test_a_real_failure_stays_a_500() -> None:
    assert server_failure(cause=ValueError("a bug")).status == 500
