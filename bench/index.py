"""Indexing, study API and delete benchmark (PostgreSQL + Redis, real Celery workers).

    .venv/bin/python -m bench.index [--instances 1000] [--stored 100000] [--requests 500]

1. Upload-to-indexed: one `dicom+stream` body of N ~80 kB instances (one study, 4 series),
   timed from the start of the POST until its status says `done`, with 1 and then 2 worker
   processes (concurrency 1 each). The index-only share (202 → done) is shown too, and the CPU
   per instance of the workers' process trees and of the server (from /proc: unlike the rates,
   it hardly moves with other load on the machine; the server's includes the status polls).
2. `GET /studies/{uid}` and `GET /studies/{uid}/series` latency with 100,000 instances stored
   (rows bulk-created directly: 500 studies × 4 series × 50 instances), sequential requests.
3. `DELETE /studies/{uid}` of a 200-instance study uploaded and indexed for real (its bytes
   exist and are removed before the answer).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
import uuid

import httpx

from bench import common, peer
from tests.support import live
from tests.support.dicomfactory import make_study
from tests.support.multipart import build_multipart

BOUNDARY = "bench-index-boundary"
PIXELS = 79_400  # + ~600 bytes of header ≈ 80 kB per instance


def start_workers(s: common.Setup, count: int) -> list[live.Process]:
    """``count`` Celery workers on the run's queue, each started and ready (tests' own helper)."""
    return [live.worker_start(s.env, s.data_dir) for _ in range(count)]


def workers_cpu(workers: list[live.Process]) -> float:
    """CPU seconds the workers (each with its pool process) have used so far: robust to other load."""
    return sum(peer.tree_cpu_seconds(w.proc.pid) for w in workers if w.proc is not None)


def upload(client: httpx.Client, auth: dict[str, str], body: bytes) -> tuple[float, float]:
    """Seconds from POST to `done`, and from the 202 to `done`."""
    request_id = str(uuid.uuid4())
    headers = {**auth, "Content-Type": f"application/dicom+stream; boundary={BOUNDARY}", "X-Request-Id": request_id,
               "Content-Length": str(len(body))}  # fmt: skip
    started = time.perf_counter()
    response = client.post("/api/v2/dicom/stream", content=common.pieces(body), headers=headers)
    assert response.status_code == 202, response.text
    accepted = time.perf_counter()
    while True:
        state = client.get(f"/api/v2/dicom/uploads/{request_id}", headers=auth).json()
        if state["state"] in ("done", "failed"):
            assert state["state"] == "done" and state["instances_rejected"] == 0, state
            done = time.perf_counter()
            return done - started, done - accepted
        time.sleep(0.01)


def bulk_store(organization_slug: str, studies: int, series: int, per_series: int) -> list[str]:
    """Index rows created directly (no files): the read benchmark needs volume, not bytes."""
    from accounts.models import Organization
    from studies.models import Instance, Patient, Series, Study

    org = Organization.objects.get(slug=organization_slug)
    patients = Patient.objects.bulk_create(
        [Patient(organization=org, patient_id=f"BP{p}", name=f"Bench^{p}") for p in range(max(1, studies // 5))]
    )
    size = PIXELS + 600
    made = Study.objects.bulk_create(
        Study(
            organization=org,
            patient=patients[i % len(patients)],
            study_uid=f"1.2.826.0.1.9999.{i}",
            series_count=series,
            instance_count=series * per_series,
            bytes=series * per_series * size,
            modalities=["CT"],
            accession_number=f"A{i}",
        )
        for i in range(studies)
    )
    for first in range(0, len(made), 50):
        rows = Series.objects.bulk_create(
            Series(study=study, series_uid=f"{study.study_uid}.{n}", number=n, modality="CT",
                   instance_count=per_series, bytes=per_series * size, storage_prefix=f"uploads/{org.pk}/x/")
            for study in made[first : first + 50]
            for n in range(series)
        )  # fmt: skip
        Instance.objects.bulk_create(
            (
                Instance(
                    organization=org,
                    series=row,
                    sop_uid=f"{row.series_uid}.{k}",
                    sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                    transfer_syntax_uid="1.2.840.10008.1.2.1",
                    number=k,
                    object_key=f"uploads/{org.pk}/x/{row.pk}-{k}.dcm",
                    size=size,
                    sha256="0" * 64,
                )
                for row in rows
                for k in range(per_series)
            ),
            batch_size=5000,
        )
    # As autovacuum would soon after such a load: without statistics PostgreSQL plans for
    # empty tables (a study lookup scanned the organization's 500 studies instead of its index).
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return [s.study_uid for s in made]


def in_process(key: str, paths: list[str]) -> tuple[float, float]:
    """The same requests through Django's test client: the view's own share, without the
    HTTP server, the ASGI thread hop and its per-request database connection."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_HOST="127.0.0.1")
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    return common.percentiles(samples)


def delete_times(client: httpx.Client, auth: dict[str, str], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        body = build_multipart(make_study(n_series=2, per_series=100, pixel_bytes=PIXELS), BOUNDARY)
        upload(client, auth, body)
        uid = client.get("/api/v2/studies?limit=1", headers=auth).json()["results"][0]["study_uid"]
        started = time.perf_counter()
        response = client.delete(f"/api/v2/studies/{uid}", headers=auth)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200 and response.json()["instance_count"] == 200, response.text
    return times


def latency(client: httpx.Client, auth: dict[str, str], paths: list[str]) -> tuple[float, float]:
    samples = []
    for path in paths:
        started = time.perf_counter()
        response = client.get(path, headers=auth)
        samples.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return common.percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=1000)
    parser.add_argument("--stored", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()

    s = common.setup(services=True)
    os.environ.update(s.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "prizmed.settings"
    import django

    django.setup()
    key = s.issue_key("bench", plan="enterprise", role="admin")
    auth = {"Authorization": f"Bearer {key}"}
    server = common.start_server(s)
    assert server.proc is not None
    server_pid = server.proc.pid
    rows: list[tuple[str, str]] = []
    with httpx.Client(base_url=server.url, timeout=300) as client:
        for count in (1, 2):
            workers = start_workers(s, count)
            try:
                upload(client, auth, build_multipart(make_study(n_series=1, per_series=20), BOUNDARY))  # warm-up
                bodies = [make_study(n_series=4, per_series=args.instances // 4, pixel_bytes=PIXELS) for _ in range(3)]
                cpu, server_cpu = workers_cpu(workers), peer.tree_cpu_seconds(server_pid)
                runs = [upload(client, auth, build_multipart(body, BOUNDARY)) for body in bodies]
                per_instance = 1000 / (len(bodies) * args.instances)
                cpu_ms = (workers_cpu(workers) - cpu) * per_instance
                server_ms = (peer.tree_cpu_seconds(server_pid) - server_cpu) * per_instance
            finally:
                for worker in workers:
                    worker.stop()
            total, index_only = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
            rows.append(
                (
                    f"upload → indexed, {args.instances} × 80 kB in one body, {count} worker(s)",
                    f"**{args.instances / total:.0f} instances/s** ({total:.2f} s; of which 202 → done "
                    f"{index_only:.2f} s = {args.instances / index_only:.0f} instances/s); "
                    f"CPU per instance: workers {cpu_ms:.2f} ms, server {server_ms:.2f} ms",
                )
            )

        workers = start_workers(s, 2)
        try:
            uids = bulk_store("bench", args.stored // 200, 4, 50)
            picks = [random.choice(uids) for _ in range(args.requests)]
            for label, paths in (
                ("GET /studies/{uid}", [f"/api/v2/studies/{u}" for u in picks]),
                ("GET /studies/{uid}/series", [f"/api/v2/studies/{u}/series" for u in picks]),
                ("GET /studies?patient_id=…", [f"/api/v2/studies?patient_id=BP{random.randrange(100)}" for _ in picks]),
            ):
                latency(client, auth, paths[:50])  # warm-up
                p50, p95 = latency(client, auth, paths)
                v50, v95 = in_process(key, paths)
                rows.append(
                    (
                        f"{label}, {args.stored:,} instances stored",
                        f"HTTP p50 {p50:.1f} ms, p95 {p95:.1f} ms; view in-process p50 {v50:.1f} ms, p95 {v95:.1f} ms",
                    )
                )
            times = delete_times(client, auth, 5)
            rows.append(
                (
                    "DELETE /studies/{uid}, 200 instances (rows + files, HTTP)",
                    f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms",
                )
            )
        finally:
            for worker in workers:
                worker.stop()
            server.stop()

    print("| measurement | result |")
    print("|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
