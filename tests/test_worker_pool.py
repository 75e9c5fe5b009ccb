"""A real Celery worker keeps its PostgreSQL connections from task to task (core/worker_db.py).

Celery's own Django fix-up closes the psycopg pool around every task, so each task opened new
sessions (issue 19: ~4 per upload). PostgreSQL counts the sessions opened on each database
(`pg_stat_database.sessions`); over a worker's whole life, 50 uploads and their tasks included,
they must stay within the worker's pool size.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings

from studies.models import Upload, UploadState
from tests.support import dicomfactory as dcm
from tests.support import live
from tests.support.indexing import http_upload, wait_for
from tests.support.world import World

UPLOADS = 50
POOL_SIZE = 3


def sessions_opened() -> int:
    """Sessions ever opened on the test database, as PostgreSQL's statistics say now."""
    db = settings.DATABASES["default"]
    admin = live.database_url({**db, "NAME": "postgres"})
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s", (db["NAME"],)).fetchone()
    assert row is not None
    return int(row[0])


@pytest.mark.services
def test_a_worker_opens_at_most_its_pool_of_sessions_over_50_uploads(
    api: httpx.Client, world: World, child_env: dict[str, str], run_dir: Path
) -> None:
    # Queued first, with no worker running: the worker below is the only one opening sessions.
    ids = [http_upload(api, world.bob, [dcm.make_instance(patient_id=f"POOL-{n}")]) for n in range(UPLOADS)]
    before = sessions_opened()
    worker = live.worker_start(child_env, run_dir, DB_POOL_MAX_SIZE=str(POOL_SIZE))
    try:
        wait_for(
            lambda: Upload.objects.filter(pk__in=ids, state=UploadState.DONE).count() == UPLOADS,
            timeout=180,
            what="every upload to be indexed",
        )
    finally:
        worker.stop()  # its backends end, so their statistics are flushed
    opened = sessions_opened() - before
    assert 1 <= opened <= POOL_SIZE, f"the worker opened {opened} PostgreSQL sessions for {UPLOADS} uploads"
