"""The check a pooled PostgreSQL connection passes when the pool hands it out.

psycopg_pool checks a connection before giving it (Django passes psycopg's ``check_connection``
when CONN_HEALTH_CHECKS is on); on a failed check it discards that one and, to avoid a busy
loop, waits with backoff (1 s, 2 s, 4 s, ...) before taking the next idle one. After a database
restart or failover every idle connection of a process is dead: with a few of them the next
request waited through one backoff each, past the pool timeout (DB_POOL_TIMEOUT_SECONDS, 3 s),
and got a 503 although the database was back. So here the first failed check has each pool
check all its idle connections at once (``ConnectionPool.check``: the dead ones discarded and
replaced in the background), and the request then takes a fresh connection after one delay.

Django creates the pool itself and gives it psycopg's check, so the pool's check is replaced
when its first connection is made (``connection_created``): psycopg_pool's ``_check`` attribute,
pinned by tests/unit/test_db_pool.py. tests/test_faults_backends.py kills every backend of a
server whose pool holds several idle connections (503s without this).
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import connections
from django.db.backends.signals import connection_created
from psycopg_pool import ConnectionPool

log = logging.getLogger("core.db_pool")


def pooled_connection_check(conn: Any) -> None:
    """psycopg_pool's own check (an empty statement); on failure, every pool of this process
    purges its dead idle connections before the error is raised. Raises what the check raised."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        for pool in _pools():
            log.warning("a pooled connection is dead: checking the pool's other idle ones")
            pool.check()  # with psycopg's own static check: no recursion into this one
        raise


def pools_purge_dead_together() -> None:
    """Give every connection pool this process creates ``pooled_connection_check`` (idempotent)."""
    connection_created.connect(_pool_check_install, dispatch_uid="core.db_pool")


def _pools() -> list[ConnectionPool[Any]]:
    return [p for w in connections.all() if (p := _pool_of(w)) is not None]


def _pool_of(wrapper: Any) -> ConnectionPool[Any] | None:
    pools: dict[str, ConnectionPool[Any]] = getattr(type(wrapper), "_connection_pools", {})
    return pools.get(wrapper.alias)


def _pool_check_install(sender: Any, connection: Any, **kwargs: Any) -> None:
    pool = _pool_of(connection)
    if pool is not None and pool._check is ConnectionPool.check_connection:  # noqa: SLF001 - see module doc
        pool._check = pooled_connection_check  # noqa: SLF001
