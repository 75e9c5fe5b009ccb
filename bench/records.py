"""Record stream benchmark (PostgreSQL + Redis, one uvicorn process).

    .venv/bin/python -m bench.records [--clients 100] [--changes 200] [--studies 10000]

1. Event latency: --clients SSE clients connected to one uvicorn; this process commits
   --changes study changes one after another (an ImagingStudy event each, written the way the
   indexer writes them, in the change's transaction); latency = the commit returning → each
   client receiving the event. p50/p95 over every (change, client) pair.
2. NDJSON export: --studies studies (each with its patient, 1 series, 4 instances) bulk-created
   with their current resources, then `GET /records/stream` as application/fhir+ndjson, timed
   until the last line; resources/s and the server's RSS growth.
3. Building resources: dicts (what the service stores) vs fhir.resources model construction.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from collections import defaultdict

import httpx

from bench import common
from tests.support import live

PATH = "/api/v2/records/stream"


async def _listen(url: str, auth: dict[str, str], received: dict[int, list[float]], ready: asyncio.Event,
                  connected: list[int], total: int, stop: asyncio.Event) -> None:  # fmt: skip
    headers = {**auth, "Accept": "text/event-stream", "X-Record-Seq": "0"}
    timeout = httpx.Timeout(30, read=None)
    async with httpx.AsyncClient(timeout=timeout) as client, client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        connected.append(1)
        if len(connected) == total:
            ready.set()
        seq = None
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                seq = int(line[4:])
            elif line.startswith("data: ") and seq is not None:
                received[seq].append(time.perf_counter())
                seq = None
            if stop.is_set():
                return


def latency(server_url: str, auth: dict[str, str], clients: int, changes: int) -> tuple[float, float, int]:
    from django.db import transaction

    from accounts.models import Organization
    from studies.index.record_events import record_study_changed
    from studies.models import Study

    received: dict[int, list[float]] = defaultdict(list)
    loop = asyncio.new_event_loop()
    ready, stop = asyncio.Event(), asyncio.Event()
    connected: list[int] = []

    async def run() -> None:
        await asyncio.gather(*(_listen(server_url + PATH, auth, received, ready, connected, clients, stop)
                               for _ in range(clients)))  # fmt: skip

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while len(connected) < clients:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(connected)} clients connected")
        time.sleep(0.05)
    time.sleep(1)  # every client past its (empty) catch-up

    org = Organization.objects.get(slug="bench-live")
    study = Study.objects.select_related("patient").get(organization=org)
    committed: dict[int, float] = {}
    for _ in range(changes):
        with transaction.atomic():
            event = record_study_changed(study=study)
        committed[event.seq] = time.perf_counter()
        time.sleep(0.05)  # one change at a time, so each latency is that change's own
    deadline = time.monotonic() + 30
    while any(len(received[seq]) < clients for seq in committed) and time.monotonic() < deadline:
        time.sleep(0.1)
    loop.call_soon_threadsafe(stop.set)
    samples = [at - committed[seq] for seq in committed for at in received[seq]]
    missing = clients * changes - len(samples)
    p50, p95 = common.percentiles(samples)
    return p50, p95, missing


def seed_export(studies: int) -> None:
    """Bulk rows for one organization and their current resources, as the indexer would leave them."""
    from django.db import connection, transaction

    from accounts.services import organization_ensure
    from records.models import EventCounter, RecordResource
    from studies.index.record_events import patient_resource_build, study_resource_build
    from studies.models import Instance, Patient, Series, Study

    org = organization_ensure(slug="bench-export", plan_slug="enterprise")
    with transaction.atomic():
        patients = Patient.objects.bulk_create(
            [Patient(organization=org, patient_id=f"P{n}", name=f"Doe^Jane{n}", sex="F") for n in range(studies)]
        )
        counts = {"series_count": 1, "instance_count": 4}
        rows = Study.objects.bulk_create(
            [
                Study(organization=org, patient=p, study_uid=f"1.2.826.0.1.{n}", modalities=["CT"], **counts)
                for n, p in enumerate(patients)
            ]
        )
        series = Series.objects.bulk_create(
            [Series(study=s, series_uid=f"{s.study_uid}.1", number=1, modality="CT", instance_count=4) for s in rows]
        )
        ct = "1.2.840.10008.5.1.4.1.1.2"
        common_fields = {"organization": org, "sop_class_uid": ct, "transfer_syntax_uid": ct, "size": 1}
        instances = [
            Instance(series=se, sop_uid=f"{se.series_uid}.{i}", number=i, object_key="k", sha256="0", **common_fields)
            for se in series
            for i in range(1, 5)
        ]
        Instance.objects.bulk_create(instances, batch_size=5000)
        resources = []
        for n, (p, s) in enumerate(zip(patients, rows, strict=True)):
            s.patient = p
            resources.append(RecordResource(organization=org, kind="Patient", key=p.patient_id, patient_id=p.patient_id,
                                            seq=2 * n + 1, resource=patient_resource_build(patient=p)))  # fmt: skip
            resources.append(RecordResource(organization=org, kind="ImagingStudy", key=s.study_uid, seq=2 * n + 2,
                                            patient_id=p.patient_id, study_uid=s.study_uid,
                                            resource=study_resource_build(study=s)))  # fmt: skip
        RecordResource.objects.bulk_create(resources, batch_size=2000)
        EventCounter.objects.create(organization=org, last_seq=2 * studies)
    with connection.cursor() as cursor:  # what autovacuum does after a bulk load
        cursor.execute("ANALYZE")


def export(server: live.Server, auth: dict[str, str]) -> tuple[int, float, float]:
    assert server.proc is not None
    before = common.rss_mb(server.proc.pid)
    headers = {**auth, "Accept": "application/fhir+ndjson"}
    started, lines = time.perf_counter(), 0
    with httpx.stream("GET", server.url + PATH, headers=headers, timeout=120) as response:
        for line in response.iter_lines():
            lines += bool(line)
    elapsed = time.perf_counter() - started
    return lines, lines / elapsed, common.peak_rss_mb(server.proc.pid) - before


def build_costs() -> tuple[float, float]:
    """Microseconds per ImagingStudy (1 series, 4 instances): dict + json vs R4B model."""
    import json
    from datetime import date

    from fhir.resources.R4B.imagingstudy import ImagingStudy

    from studies.index import fhir

    def build() -> dict[str, object]:
        instances = [fhir.InstanceRow(f"1.2.3.1.{i}", "1.2.840.10008.5.1.4.1.1.2", i) for i in range(1, 5)]
        return fhir.imaging_study_resource(fhir.StudyRow(
            organization_id=1, patient_id="P1", patient_name="Doe^Jane", study_uid="1.2.3", study_date=date(2024, 1, 2),
            study_time=None, accession_number="A1", description="", referring_physician="", modalities=["CT"],
            series_count=1, instance_count=4, series=[fhir.SeriesRow("1.2.3.1", 1, "CT", "", "CHEST", 4, instances)],
        ))  # fmt: skip

    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        json.dumps(build())
    as_dict = (time.perf_counter() - started) / rounds * 1e6
    started = time.perf_counter()
    for _ in range(rounds):
        ImagingStudy.model_validate(build()).model_dump_json()
    as_model = (time.perf_counter() - started) / rounds * 1e6
    return as_dict, as_model


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--studies", type=int, default=10_000)
    args = parser.parse_args()

    s = common.setup(services=True)
    s.env.update(
        RECORDS_MAX_STREAMS_PER_KEY=str(args.clients + 10), DB_CONN_MAX_AGE=os.environ.get("DB_CONN_MAX_AGE", "0")
    )
    os.environ.update(s.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "prizmed.settings"
    import django

    django.setup()
    from django.db import transaction

    from accounts.models import Organization
    from tests.support.records_support import index_study

    live_key = {"Authorization": f"Bearer {s.issue_key('bench-live')}"}
    index_study(Organization.objects.get(slug="bench-live"), patient_id="P1", study_uid="1.2.3.1", instances=4)
    seed_export(args.studies)
    export_key = {"Authorization": f"Bearer {s.issue_key('bench-export')}"}
    assert transaction.get_autocommit()

    server = common.start_server(s)
    try:
        p50, p95, missing = latency(server.url, live_key, args.clients, args.changes)
        count, rate, rss = export(server, export_key)
    finally:
        server.stop()
    as_dict, as_model = build_costs()

    pool = s.env.get("DB_POOL_MAX_SIZE", "10 (default)")
    print(f"Mode: PostgreSQL + Redis, one uvicorn process, connection pool DB_POOL_MAX_SIZE={pool}.\n")
    print("| measurement | result |")
    print("|---|---|")
    print(f"| event latency, commit → SSE event, {args.clients} clients × {args.changes} changes | "
          f"p50 {p50:.1f} ms, p95 {p95:.1f} ms ({missing} events missing) |")  # fmt: skip
    print(f"| NDJSON export, {args.studies:,} studies ({count:,} resources) | {rate:,.0f} resources/s, "
          f"server RSS +{rss:.1f} MB |")  # fmt: skip
    print(f"| build one ImagingStudy (4 instances): dict + json / R4B model | {as_dict:.0f} µs / {as_model:.0f} µs |")


if __name__ == "__main__":
    main()
