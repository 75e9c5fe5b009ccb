"""core/db_pool.py replaces the check Django gives psycopg_pool (its private ``_check``, pinned
here): a PostgreSQL pool checks with ``pooled_connection_check``; SQLite has no pool."""

from __future__ import annotations

import pytest
from django.db import connection

from core.db_pool import _pools, pooled_connection_check


@pytest.mark.django_db
def test_every_pool_of_this_process_checks_with_the_purging_check() -> None:
    connection.ensure_connection()
    pools = _pools()
    if connection.vendor == "postgresql":
        assert [pool._check for pool in pools] == [pooled_connection_check]
    else:
        assert pools == []
