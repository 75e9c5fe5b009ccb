"""Which backend an exception says is unreachable: the database, Redis or the Celery broker.

A backend that is down is not the request's fault nor a bug: the answer is `503` with
`Retry-After` (API.md, "Common headers and errors"), built by core.errors.service_unavailable
wherever a failure is turned into a problem (views, consumers, the gateway). The exception's
cause chain is followed, since libraries wrap each other's errors (kombu wraps redis, Django
wraps psycopg and the pool's timeout).
"""

from __future__ import annotations

import django.db
import kombu.exceptions
import psycopg
import redis.exceptions

# Transient by nature (connection refused or lost, pool exhausted, timeouts, a database lock):
# the same request may succeed once the backend is back.
_UNREACHABLE: tuple[tuple[type[BaseException], str], ...] = (
    (django.db.OperationalError, "database"),
    (django.db.InterfaceError, "database"),
    (psycopg.OperationalError, "database"),  # includes psycopg_pool.PoolTimeout
    (kombu.exceptions.OperationalError, "broker"),
    (redis.exceptions.ConnectionError, "redis"),
    (redis.exceptions.TimeoutError, "redis"),
)


def unreachable_backend(exc: BaseException | None) -> str | None:
    """``"database"``, ``"redis"`` or ``"broker"`` when ``exc`` (or an exception it was raised
    from) says that backend is unreachable; None for any other failure."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for kind, name in _UNREACHABLE:
            if isinstance(exc, kind):
                return name
        exc = exc.__cause__ or exc.__context__
    return None
