"""Shared set-up for benchmark scripts: a fresh database, a server, keys, memory readings.

Benchmarks run outside pytest: each makes its own data directory and database (SQLite, or a
fresh PostgreSQL database when --services is given) so a run never touches real data.
"""

from __future__ import annotations

import argparse
import atexit
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support import live

PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/14"


@dataclass
class Setup:
    env: dict[str, str]
    data_dir: Path

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=live.ROOT, env=self.env, capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(result.stderr)
        return result.stdout.strip()

    def issue_key(self, org: str, plan: str = "enterprise", role: str = "admin") -> str:
        return self.manage("issue_key", "--org", org, "--plan", plan, "--role", role)


def setup(*, services: bool, pg_admin_url: str = PG_ADMIN_URL, redis_url: str = REDIS_URL) -> Setup:
    """A migrated database in a temp dir; with `services`, a fresh PostgreSQL db plus Redis.

    `pg_admin_url` may name a Unix socket (`postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres`):
    libpq and dj-database-url both read a percent-encoded path as the socket directory.
    """
    # Under var/, where `make run` keeps its data, not /tmp: on this machine /tmp's corner of
    # the disk takes ~0.9 ms to create a file against ~0.1 ms elsewhere on the same filesystem
    # (a multipart upload creates one per instance).
    (live.ROOT / "var").mkdir(exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="bench-", dir=live.ROOT / "var"))
    # A run stores gigabytes: nothing of it outlives the run.
    atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    clock = data_dir / "clock"
    extra = {"PRIZMED_NAMESPACE": f"bench-{uuid.uuid4().hex[:8]}", "PRIZMED_CLOCK_FILE": ""}
    # Production services refuse to start without the audit chain's key (docs/audit.md).
    extra["PRIZMED_AUDIT_KEY"] = secrets.token_urlsafe(32)
    if services:
        import psycopg

        name = f"prizmed_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg_admin_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        atexit.register(_drop_database, name, pg_admin_url)
        db_url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
        extra["REDIS_URL"] = redis_url
        # Production services need the audit chain's key (docs/audit.md); a run's own, thrown away.
        extra.setdefault("PRIZMED_AUDIT_KEY", f"bench-only-audit-key-{uuid.uuid4().hex}")
    else:
        db_url = f"sqlite:///{data_dir / 'prizmed.sqlite3'}"
    env = live.child_env(database_url=db_url, data_dir=data_dir, clock_file=clock, **extra)
    env["LOG_LEVEL"] = "WARNING"
    s = Setup(env=env, data_dir=data_dir)
    s.manage("migrate", "-v0")
    return s


def pieces(body: bytes) -> Iterator[bytes]:
    # httpcore sends one bytes body with `buffer = buffer[n:]` after each send(): quadratic
    # copying for a 1 GB body. 1 MiB pieces with an explicit Content-Length avoid it.
    view = memoryview(body)
    for start in range(0, len(body), 1024 * 1024):
        yield bytes(view[start : start + 1024 * 1024])


def _drop_database(name: str, admin_url: str = PG_ADMIN_URL) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process (all its threads) has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 of latencies in seconds, returned in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return statistics.median(ordered) * 1000, p95 * 1000


def start_server(s: Setup) -> live.Server:
    return live.server(s.env, s.data_dir)


def run_in_tree(tree: Path, env: dict[str, str], code: str, *args: str) -> str:
    """Run Python ``code`` (with ``args``) in a child process on checkout ``tree``'s code (for
    benchmarks that alternate checkouts in one run); its stdout. RuntimeError with its stderr."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=tree, env={**env, "PYTHONPATH": str(tree)},
        capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise RuntimeError(f"{tree}: {result.stderr[-3000:]}")
    return result.stdout


def add_checkout_options(parser: argparse.ArgumentParser) -> None:
    """The options of a benchmark that alternates checkouts in one run (``run_in_tree``): the
    mode, the PostgreSQL and Redis it uses, and the checkouts (``--trees``, comma-separated)."""
    parser.add_argument("--services", action="store_true", help="PostgreSQL and Redis, as production runs")
    parser.add_argument("--pg-admin-url", default="postgres://postgres@%2Fvar%2Frun%2Fpostgresql/postgres")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--trees", default=".", help="comma-separated checkouts to alternate")
