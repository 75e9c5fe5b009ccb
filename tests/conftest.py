"""The test world: org acme (alice admin, bob standard), org globex (carol), and real servers.

Integration tests talk HTTP to uvicorn processes started here, against the same database the
test process writes to. The rate-limit clock is a file shared with the servers; each test
starts in a fresh one-minute window so counters never leak between tests.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from accounts.models import APIKey, Organization, Role
from accounts.services import key_issue, key_revoke, organization_ensure
from tests import live

REQUIRE_SERVICES = os.environ.get("PRIZMED_REQUIRE_SERVICES") == "1"
CLOCK_START = 1_900_000_020.0  # a fixed epoch, 20 s into a window


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if settings.REDIS_URL:
        return
    # Multi-process behaviour needs shared Redis; the services run (`make test`) covers it.
    deselected = [item for item in items if item.get_closest_marker("services")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("services")]


@dataclass
class Party:
    org: Organization
    key: APIKey
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class World:
    alice: Party  # acme, admin
    bob: Party  # acme, standard
    carol: Party  # globex, standard
    expired: Party  # acme, expired yesterday
    revoked: Party  # acme, revoked


def _party(org: Organization, name: str, role: str = Role.STANDARD, **kw: object) -> Party:
    key, token = key_issue(organization=org, name=name, role=role, **kw)  # type: ignore[arg-type]
    return Party(org=org, key=key, token=token)


@pytest.fixture
def world(django_db_serialized_rollback: None, transactional_db: None) -> World:
    # serialized_rollback restores the rows migrations seeded (plans, groups) after each flush.
    acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme Hospital")
    globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex Imaging")
    revoked = _party(acme, "old")
    key_revoke(key=revoked.key)
    return World(
        alice=_party(acme, "alice", Role.ADMIN),
        bob=_party(acme, "bob"),
        carol=_party(globex, "carol"),
        expired=_party(acme, "expired", expires_at=timezone.now() - timedelta(days=1)),
        revoked=revoked,
    )


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("run")


@pytest.fixture(scope="session")
def clock_file(run_dir: Path) -> Path:
    path = run_dir / "clock"
    path.write_text(str(CLOCK_START))
    return path


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def now(self) -> float:
        return float(self.path.read_text())

    def set(self, value: float) -> None:
        self.path.write_text(repr(value))

    def advance(self, seconds: float) -> None:
        self.set(self.now() + seconds)


@pytest.fixture
def clock(clock_file: Path) -> Iterator[Clock]:
    clk = Clock(clock_file)
    # A fresh window per test, 20 s in: counters from earlier tests (same org ids) are gone.
    clk.set((clk.now() // 60 + 1) * 60 + 20)
    yield clk


@pytest.fixture(scope="session")
def child_env(django_db_setup: None, run_dir: Path, clock_file: Path) -> dict[str, str]:
    extra = {"REDIS_URL": settings.REDIS_URL} if settings.REDIS_URL else {}
    # Record streams: heartbeats and log re-reads every second, so tests wait less.
    extra.update(RECORDS_HEARTBEAT_SECONDS="1", RECORDS_POLL_SECONDS="1")
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


def start_worker(env: dict[str, str], log_dir: Path, **extra_env: str) -> live.Process:
    """A real `celery worker` on this run's queue (PRIZMED_NAMESPACE), started and ready."""
    if not settings.REDIS_URL:
        pytest.fail("a Celery worker needs REDIS_URL; mark the test @pytest.mark.services")
    argv = [sys.executable, "-m", "celery", "-A", "prizmed", "worker", "-l", "INFO", "--concurrency", "1",
            "-Q", env["PRIZMED_NAMESPACE"], "--without-mingle", "--without-gossip", "--without-heartbeat",
            "-n", f"w{live.free_port()}@%h"]  # fmt: skip
    proc = live.Process(argv=argv, env={**env, **extra_env}, log_path=log_dir / f"worker-{live.free_port()}.log")
    proc.start()
    deadline = time.monotonic() + 30
    while " ready." not in proc.log():
        assert proc.proc is not None
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker did not start:\n{proc.log()[-3000:]}")
        time.sleep(0.1)
    return proc


@pytest.fixture
def worker(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Process]:
    proc = start_worker(child_env, run_dir)
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
