"""Fixture wiring: the test world, real servers and workers, the shared clock.

Integration tests talk HTTP to uvicorn processes started here, against the same database the
test process writes to. The rate-limit clock is a file shared with the servers; each test
starts in a fresh one-minute window so counters never leak between tests. The world, the
clock and the processes themselves are built in tests/support/.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.support import live
from tests.support.faults import PrivateRedis
from tests.support.world import CLOCK_START, Clock, World, world_build


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.REDIS_URL:
        return
    # Multi-process behaviour needs shared Redis; the services run (`make test`) covers it.
    deselected = [item for item in items if item.get_closest_marker("services")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("services")]


@pytest.fixture
def world(django_db_serialized_rollback: None, transactional_db: None) -> World:
    # serialized_rollback restores the rows migrations seeded (plans, groups) after each flush.
    return world_build()


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def clock_file(run_dir: Path) -> Path:
    path = run_dir / "clock"
    path.write_text(str(CLOCK_START))
    return path


@pytest.fixture
def clock(clock_file: Path) -> Iterator[Clock]:
    clk = Clock(clock_file)
    clk.next_window()
    yield clk


@pytest.fixture(scope="session")
def child_env(django_db_setup: None, run_dir: Path, clock_file: Path) -> dict[str, str]:
    extra = {"REDIS_URL": settings.REDIS_URL} if settings.REDIS_URL else {}
    # Record streams: heartbeats and log re-reads every second, so tests wait less.
    extra.update(RECORDS_HEARTBEAT_SECONDS="1", RECORDS_POLL_SECONDS="1")
    # Deny matrices send many keyless requests from 127.0.0.1 in one pinned clock window: the
    # failed-authentication limit is tested on servers of its own (tests/test_auth_failures.py).
    extra.update(PRIZMED_AUTH_FAILURES_PER_MINUTE="1000000")
    # A server's usage flush writes rows that reference the organization: between tests, that write
    # and the test database's flush (TRUNCATE) can deadlock. The usage page flushes its own process,
    # and tests/unit/test_usage.py the flush itself, so the servers' timer stays out of the way.
    extra.update(PRIZMED_USAGE_FLUSH_SECONDS="3600")
    return live.child_env(
        database_url=live.database_url(settings.DATABASES["default"]),
        data_dir=run_dir / "data",
        clock_file=clock_file,
        **extra,
    )


@pytest.fixture(scope="session")
def server(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    srv = live.server(child_env, run_dir)
    yield srv
    srv.stop()


@pytest.fixture
def redis(run_dir: Path) -> Iterator[PrivateRedis]:
    """A Redis server of the test's own, on a free port: fault tests stop and start it."""
    private = PrivateRedis(live.free_port(), run_dir)
    private.start()
    yield private
    private.stop()


@pytest.fixture(scope="session")
def server2(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    """A second uvicorn process on the same database (and Redis): for cross-process behaviour."""
    srv = live.server(child_env, run_dir)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> None:
    """pytest-django empties tables between tests with TRUNCATE, which the audit log's
    trigger refuses (accounts/migrations/0004): disable that one trigger in the test database."""
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_truncate")


@pytest.fixture
def worker(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Process]:
    if not settings.REDIS_URL:
        pytest.fail("a Celery worker needs REDIS_URL; mark the test @pytest.mark.services")
    proc = live.worker_start(child_env, run_dir)
    yield proc
    proc.stop()


@pytest.fixture
def indexer(request: pytest.FixtureRequest) -> live.Process | None:
    """Whoever indexes uploads in this mode: a Celery worker with Redis; without, the server's
    own background thread (embedded mode), so there is nothing to start."""
    return request.getfixturevalue("worker") if settings.REDIS_URL else None  # type: ignore[no-any-return]


@pytest.fixture
def api(server: live.Server, clock: Clock) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{server.url}/api/v2", timeout=30) as client:
        yield client
