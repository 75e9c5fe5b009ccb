"""Unit costs for the capacity model of docs/scaling.md (issue 15), on the production topology
with objects in S3: one uvicorn process, one Celery worker, PostgreSQL, a private Redis and
moto's S3 server (port 5597), all on this machine.

    .venv/bin/python -m bench.scaling [--bodies 10] [--per-body 20] [--reads 100]

Measured per instance stored (multipart bodies of ``--per-body`` CT-like instances of ~100 kB,
until each upload is `done`) and per WADO-RS instance read (`Accept: application/dicom`):
- CPU seconds of the API process and of the worker (process tree), from /proc;
- PostgreSQL: CPU of the (pooled, long-lived) backends serving the run's database, transactions
  committed and rows written (pg_stat_database) for that database only; round trips are not
  counted (pg_stat_statements is not loaded on this machine's shared server);
- Redis commands processed (the benchmark's own redis-server: nobody else's commands count);
- object store requests (moto logs one line per request).
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import redis

from bench import common, compare, peer
from tests.support import live, s3
from tests.support.dicomfactory import make_instance
from tests.support.multipart import build_multipart

S3_PORT = 5597
BOUNDARY = "bench-scaling"
PIXELS = 100_000


@dataclass
class Meters:
    server: live.Server
    worker: live.Process
    moto: live.Process
    pg: compare.PgMeter
    pg_url: str
    redis_url: str

    def reading(self) -> dict[str, float]:
        assert self.server.proc is not None and self.worker.proc is not None
        database = self.pg.database
        with psycopg.connect(self.pg_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted FROM pg_stat_database WHERE datname = %s",
                (database,),
            ).fetchone()
            assert row is not None
        pg_cpu = self.pg.reading()
        return {
            "api_cpu": peer.tree_cpu_seconds(self.server.proc.pid),
            "worker_cpu": peer.tree_cpu_seconds(self.worker.proc.pid),
            # Live backends only: the server's and worker's pooled sessions stay open for the run,
            # and exited backends are counted server-wide (other databases' too).
            "pg_cpu": pg_cpu["PostgreSQL (live backends)"],
            "pg_xacts": float(row[0]),
            "pg_rows": float(row[1]),
            "redis_cmds": float(redis.Redis.from_url(self.redis_url).info("stats")["total_commands_processed"]),
            "store_requests": float(s3.requests_served(self.moto)),
        }


def measure(meters: Meters, run: Callable[[], int]) -> tuple[dict[str, float], int, float]:
    """Run the workload; the meters' growth, the units it did, and its seconds. PostgreSQL's
    statistics are flushed with a delay: wait for them before and after."""
    time.sleep(1.5)
    before = meters.reading()
    started = time.perf_counter()
    units = run()
    elapsed = time.perf_counter() - started
    time.sleep(1.5)
    after = meters.reading()
    return {k: after[k] - before[k] for k in before}, units, elapsed


def upload_all(client: httpx.Client, auth: dict[str, str], bodies: list[bytes], per_body: int) -> int:
    ids = []
    for body in bodies:
        request_id = str(uuid.uuid4())
        headers = {**auth, "Content-Type": f"application/dicom+stream; boundary={BOUNDARY}", "X-Request-Id": request_id}
        response = client.post("/api/v2/dicom/stream", content=body, headers=headers)
        assert response.status_code == 202, response.text
        ids.append(request_id)
    for request_id in ids:
        deadline = time.monotonic() + 300
        while client.get(f"/api/v2/dicom/uploads/{request_id}", headers=auth).json()["state"] not in ("done", "failed"):
            if time.monotonic() > deadline:
                raise RuntimeError(f"upload {request_id} not indexed in 300 s")
            time.sleep(0.2)
    return len(bodies) * per_body


def read_all(client: httpx.Client, auth: dict[str, str], paths: list[str]) -> int:
    for path in paths:
        response = client.get(path, headers={**auth, "Accept": "application/dicom"})
        assert response.status_code == 200, response.text[:300]
    return len(paths)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bodies", type=int, default=10)
    parser.add_argument("--per-body", type=int, default=20)
    parser.add_argument("--reads", type=int, default=100)
    args = parser.parse_args()
    var = live.ROOT / "var"
    print(f"Load before: {compare.uptime()}", flush=True)
    private_redis = peer.PrivateRedis(var).start()
    procs: list[Any] = []
    try:
        s = common.setup(services=True, redis_url=private_redis.url)
        moto = s3.moto_server(S3_PORT, s.data_dir)
        procs.append(moto)
        endpoint = f"http://127.0.0.1:{S3_PORT}"
        s3.bucket_create(endpoint, "scaling")
        s.env.update(s3.server_env(endpoint, "s3://scaling/objects"))
        s.env.update(PRIZMED_S3_PART_BYTES=str(8 * 1024 * 1024), PRIZMED_S3_TIMEOUT_SECONDS="30")
        auth = {"Authorization": f"Bearer {s.issue_key('bench-scaling')}"}
        server = common.start_server(s)
        procs.append(server)
        worker = live.worker_start(s.env, s.data_dir)
        procs.append(worker)
        database = s.env["DATABASE_URL"].rsplit("/", 1)[1]
        meters = Meters(server, worker, moto, compare.PgMeter(common.PG_ADMIN_URL, database), common.PG_ADMIN_URL,
                        private_redis.url)  # fmt: skip
        bodies = []
        for n in range(args.bodies):
            study_uid, series_uid = f"2.25.{n + 1}{uuid.uuid4().int % 10**12}", f"2.25.9{n}{uuid.uuid4().int % 10**12}"
            parts = [make_instance(patient_id=f"SC-{n}", study_uid=study_uid, series_uid=series_uid,
                                   instance_number=i + 1, pixel_bytes=PIXELS)
                     for i in range(args.per_body)]  # fmt: skip
            bodies.append(build_multipart(parts, BOUNDARY))
        with httpx.Client(base_url=server.url, timeout=300) as client:
            upload_all(client, auth, bodies[:1], args.per_body)  # warm-up, not measured
            ingest, instances, ingest_s = measure(meters, lambda: upload_all(client, auth, bodies[1:], args.per_body))
            paths = _instance_paths(client, auth)
            rng = random.Random(1)
            picks = [rng.choice(paths) for _ in range(args.reads)]
            reads, count, read_s = measure(meters, lambda: read_all(client, auth, picks))
    finally:
        for proc in reversed(procs):
            proc.stop()
        private_redis.stop()
    print(f"Load after: {compare.uptime()}\n")
    print(f"{instances} instances stored in {ingest_s:.1f} s ({instances / ingest_s:.0f}/s, one API process, one "
          f"worker); {count} instance reads in {read_s:.1f} s.\n")  # fmt: skip
    print("| per unit | API CPU ms | worker CPU ms | PostgreSQL CPU ms | PG transactions | PG rows written "
          "| Redis commands | store requests |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for label, d, n in (("instance stored and indexed", ingest, instances), ("WADO-RS instance read", reads, count)):
        print(f"| {label} | {1000 * d['api_cpu'] / n:.1f} | {1000 * d['worker_cpu'] / n:.1f} | "
              f"{1000 * d['pg_cpu'] / n:.1f} | {d['pg_xacts'] / n:.2f} | {d['pg_rows'] / n:.1f} | "
              f"{d['redis_cmds'] / n:.1f} | {d['store_requests'] / n:.2f} |")  # fmt: skip


def _instance_paths(client: httpx.Client, auth: dict[str, str]) -> list[str]:
    """WADO-RS paths of every instance stored (QIDO over studies, then instances)."""
    accept = {**auth, "Accept": "application/dicom+json"}
    paths = []
    for study in client.get("/api/v2/dicomweb/studies", headers=accept, params={"limit": "1000"}).json():
        study_uid = study["0020000D"]["Value"][0]
        for found in client.get(f"/api/v2/dicomweb/studies/{study_uid}/instances", headers=accept).json():
            series_uid, sop = found["0020000E"]["Value"][0], found["00080018"]["Value"][0]
            paths.append(f"/api/v2/dicomweb/studies/{study_uid}/series/{series_uid}/instances/{sop}")
    return paths


if __name__ == "__main__":
    main()
