"""Record stream benchmark (PostgreSQL + Redis, uvicorn processes sharing them).

    .venv/bin/python -m bench.records [--clients 100] [--changes 200] [--servers 2]
        [--burst 0] [--client-procs 4] [--buffer 100] [--no-stall] [--no-export] [--studies 10000]

1. Event latency: --clients SSE clients spread over --servers uvicorn processes, run by
   --client-procs processes of their own (asyncio streams, no HTTP library), plus one stalled
   client (connects, never reads, 4 KB receive buffer) on the first server. This process commits
   --changes study changes one after another (an ImagingStudy event each, written the way the
   indexer writes them, in the change's transaction); latency = the commit returning → each
   client receiving the event (time.monotonic, one clock for every process). p50/p95 over every
   (change, client) pair; events missed, repeated or out of order; per server: RSS idle /
   connected / after, CPU per change, and what its log reader counted (records/fanout.py logs
   it when the last stream leaves): SQL statements per change. --burst more changes follow back
   to back (counted for missed/repeated, not for latency): enough of them fill the stalled
   client's socket buffers, and its feed (--buffer sets RECORDS_STREAM_BUFFER_EVENTS) overflows.
2. NDJSON export: --studies studies (each with its patient, 1 series, 4 instances) bulk-created
   with their current resources, then `GET /records/stream` as application/fhir+ndjson, timed
   until the last line; resources/s and the server's RSS growth.
3. Building resources: dicts (what the service stores) vs fhir.resources model construction.

`--fanout-cpu` instead measures, in this process and without sockets, the CPU one event costs
the fan-out: the reader's offer to --clients feeds, each stream's task taking it and handing
the bytes through 8 pass-through send wrappers (standing in for the ASGI middleware) to a sink;
uvloop, as uvicorn runs. What is left out: uvicorn's send and the socket write.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing
import os
import queue
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import common
from tests.support import live

PATH = "/api/v2/records/stream"


def _client_process(targets: list[tuple[int, str]], auth: str, position: int, target: Any, stop: Any,
                    results: Any) -> None:  # fmt: skip
    """One client process: an SSE connection per (port, path) target, read with asyncio streams
    (no HTTP client library: the clients share the servers' 2 cores). Reports, per connection,
    every (seq, time.monotonic()) it received once the last change has reached all of them."""
    asyncio.run(_clients(targets, auth, position, target, stop, results))


async def _clients(targets: list[tuple[int, str]], auth: str, position: int, target: Any, stop: Any,
                   results: Any) -> None:  # fmt: skip
    received: list[list[tuple[int, float]]] = [[] for _ in targets]
    connected = asyncio.Event()
    count = [0]

    async def one(n: int, port: int, path: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                   f"Accept: text/event-stream\r\nX-Record-Seq: {position}\r\n\r\n")  # fmt: skip
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        count[0] += 1
        if count[0] == len(targets):
            connected.set()
        mine, rest = received[n], b""
        try:
            while data := await reader.read(1 << 16):
                now = time.monotonic()
                # Chunked transfer coding: each chunk holds whole events, so "id:" lines are intact.
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                mine.extend((int(line[4:]), now) for line in lines if line.startswith(b"id: "))
        finally:
            writer.close()

    tasks = [asyncio.create_task(one(n, port, path)) for n, (port, path) in enumerate(targets)]
    await asyncio.wait_for(connected.wait(), 120)
    results.put(("connected", len(targets)))
    while not stop.is_set():
        last = target.value
        if last and all(r and r[-1][0] >= last for r in received):
            break
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    results.put(("received", received))


def _stalled_client(port: int, auth: str, position: int) -> socket.socket:
    """A client that connects and never reads, through a 4 KB receive buffer."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.sendall(f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth}\r\n"
                 f"Accept: text/event-stream\r\nX-Record-Seq: {position}\r\n\r\n".encode())  # fmt: skip
    return sock


@dataclass
class ServerFigures:
    rss_idle: float = 0.0  # MB, before any client
    rss_connected: float = 0.0  # MB, every client connected
    rss_after: float = 0.0  # MB, after the changes reached every client
    cpu_ms_per_event: float = 0.0
    sys_ms_per_event: float = 0.0  # the kernel's part of it (the sockets' writes)
    reader: dict[str, int] = field(default_factory=dict)  # the "records log reader stopped" line


@dataclass
class LatencyFigures:
    p50: float
    p95: float
    missed: int
    repeated: int
    out_of_order: int
    servers: list[ServerFigures]


def system_seconds(pid: int) -> float:
    """The system (kernel) part of common.cpu_seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def reader_line(server: live.Server, organization_id: int) -> dict[str, int]:
    """The counts the server's log reader logged when its last stream left (waits up to 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in server.log().splitlines():
            if '"records log reader stopped"' in line:
                entry = json.loads(line)
                if entry.get("organization_id") == organization_id:
                    return entry  # type: ignore[no-any-return]
        time.sleep(0.5)
    return {}


def latency(servers: list[live.Server], auth: dict[str, str], clients: int, changes: int, burst: int, procs: int,
            stall: bool) -> LatencyFigures:  # fmt: skip
    from django.db import transaction

    from accounts.models import Organization
    from records.selectors import log_head
    from studies.index.record_events import record_study_changed
    from studies.models import Study

    org = Organization.objects.get(slug="bench-live")
    study = Study.objects.select_related("patient").get(organization=org)
    position = log_head(organization_id=org.pk)
    figures = [ServerFigures(rss_idle=common.rss_mb(srv.proc.pid)) for srv in servers if srv.proc]
    ctx = multiprocessing.get_context("spawn")
    target, stop, results = ctx.Value("q", 0), ctx.Event(), ctx.Queue()
    targets = [(servers[n % len(servers)].port, PATH) for n in range(clients)]
    key = auth["Authorization"]
    children = [
        ctx.Process(target=_client_process, args=(targets[k::procs], key, position, target, stop, results))
        for k in range(procs)
    ]
    for child in children:
        child.start()
    for _ in children:
        kind, _count = results.get(timeout=180)
        assert kind == "connected"
    stalled = _stalled_client(servers[0].port, key, position) if stall else None
    time.sleep(2)  # every client past its (empty) catch-up
    for fig, srv in zip(figures, servers, strict=True):
        assert srv.proc is not None
        fig.rss_connected = common.rss_mb(srv.proc.pid)
    cpu_before = [common.cpu_seconds(srv.proc.pid) for srv in servers if srv.proc]
    sys_before = [system_seconds(srv.proc.pid) for srv in servers if srv.proc]

    committed: dict[int, float] = {}
    for _ in range(changes):
        with transaction.atomic():
            event = record_study_changed(study=study)
        committed[event.seq] = time.monotonic()
        time.sleep(0.05)  # one change at a time, so each latency is that change's own
    # Then a burst, back to back: more than the stalled stream's socket buffers and feed hold.
    burst_seqs = []
    for _ in range(burst):
        with transaction.atomic():
            burst_seqs.append(record_study_changed(study=study).seq)
    target.value = max([*committed, *burst_seqs])
    received = _collect(results, clients)
    for fig, srv, before, sys_at in zip(figures, servers, cpu_before, sys_before, strict=True):
        assert srv.proc is not None
        fig.cpu_ms_per_event = (common.cpu_seconds(srv.proc.pid) - before) / (changes + burst) * 1000
        fig.sys_ms_per_event = (system_seconds(srv.proc.pid) - sys_at) / (changes + burst) * 1000
        fig.rss_after = common.rss_mb(srv.proc.pid)
    stop.set()
    for child in children:
        child.join(30)
    if stalled is not None:
        stalled.close()
    for fig, srv in zip(figures, servers, strict=True):
        fig.reader = reader_line(srv, org.pk)

    return LatencyFigures(*_tally(received, committed, {*committed, *burst_seqs}, clients), servers=figures)


def _collect(results: Any, clients: int) -> list[list[tuple[int, float]]]:
    """What the client processes received, each once all its clients have the last change."""
    received: list[list[tuple[int, float]]] = []
    deadline = time.monotonic() + 120
    while len(received) < clients and time.monotonic() < deadline:
        try:
            _kind, part = results.get(timeout=5)
        except queue.Empty:
            continue
        received.extend(part)
    return received


def _tally(received: list[list[tuple[int, float]]], committed: dict[int, float], expected: set[int], clients: int
           ) -> tuple[float, float, int, int, int]:  # fmt: skip
    """p50, p95 (ms) of the paced changes; events missed, repeated, out of order, over every
    client and every change (paced and burst)."""
    samples: list[float] = []
    missed = repeated = out_of_order = 0
    for events in received:
        seqs = [seq for seq, _ in events if seq in expected]
        repeated += len(seqs) - len(set(seqs))
        missed += len(expected - set(seqs))
        out_of_order += sum(1 for a, b in itertools.pairwise(seqs) if b <= a)
        samples.extend(at - committed[seq] for seq, at in events if seq in committed)
    missed += (clients - len(received)) * len(expected)
    p50, p95 = common.percentiles(samples)
    return p50, p95, missed, repeated, out_of_order


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


def fanout_cpu(streams: int, events: int = 400) -> float:
    """CPU milliseconds per event of the in-process fan-out (see the module docstring)."""
    import uvloop

    from records.streaming import SseStream

    class LiveOnly(SseStream):
        async def _catch_up(self) -> Any:  # nothing to catch up with: no database
            return
            yield

    return uvloop.run(_fanout(LiveOnly, streams, events))


def _passthrough(send: Any) -> Any:
    async def wrapper(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
        await send(message)

    return wrapper


async def _fanout(stream_class: Any, streams: int, events: int) -> float:
    from records import fanout
    from records.request import SSE, StreamRequest
    from records.selectors import RecordFilter
    from records.sse import sse

    sent, all_sent = [0], asyncio.Event()

    async def sink(message: dict[str, Any]) -> None:
        sent[0] += 1
        if sent[0] == streams:
            all_sent.set()

    send = sink
    for _ in range(8):
        send = _passthrough(send)
    feeds: list[fanout.Feed] = []

    async def stream() -> None:
        feed = fanout.Feed(100)
        feeds.append(feed)
        req = StreamRequest(SSE, RecordFilter(), position=0, session_id=None, record_id=None, count=100, cursor=0)
        frames = stream_class(organization_id=1, api_key_id=None, req=req, feed=feed).frames()
        await anext(frames)  # retry:
        async for chunk in frames:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})

    tasks = [asyncio.create_task(stream()) for _ in range(streams)]
    await asyncio.sleep(0.2)
    body = json.dumps({"resourceType": "ImagingStudy", "id": "x", "note": [{"text": "a" * 900}]})
    started = time.process_time()
    for seq in range(1, events + 1):
        sent[0] = 0
        all_sent.clear()
        event = fanout.LiveEvent(seq, "P1", "1.2.3", sse(event="ImagingStudy", seq=seq, data=body))
        offer = fanout.Offer(after=seq - 1, up_to=seq, events=(event,), body=event.frame)
        for feed in feeds:
            feed.offer(offer)
        await all_sent.wait()
    cpu = (time.process_time() - started) / events * 1000
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return cpu


def latency_table(args: argparse.Namespace, fig: LatencyFigures) -> None:
    counts = f"{fig.missed} / {fig.repeated} / {fig.out_of_order}"
    burst = f" + {args.burst} back to back" if args.burst else ""
    print(f"| {args.clients} clients × {args.changes} changes{burst}, {args.servers} servers | "
          f"p50 {fig.p50:.1f} ms, p95 {fig.p95:.1f} ms | {counts} |")  # fmt: skip
    print()
    print("| server | streams | RSS idle → connected → after (MB) | CPU per change (system) | log reader: "
          "statements / changes (on wake-up, periodic) | streams' own statements | feed overflows |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for n, srv in enumerate(fig.servers):
        r = srv.reader
        changes = args.changes + args.burst
        per_event = r.get("queries", 0) / changes
        print(f"| {n + 1} | {r.get('streams_max', '?')} | {srv.rss_idle:.0f} → {srv.rss_connected:.0f} → "
              f"{srv.rss_after:.0f} | {srv.cpu_ms_per_event:.1f} ms ({srv.sys_ms_per_event:.1f}) | "
              f"{r.get('queries', '?')} / {changes} = {per_event:.2f} "
              f"({r.get('reads_on_wake', '?')}, {r.get('reads_periodic', '?')}) | "
              f"{r.get('stream_queries', '?')} | {r.get('overflows', '?')} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--client-procs", type=int, default=4)
    parser.add_argument("--buffer", type=int, default=100)
    parser.add_argument("--no-stall", action="store_true")
    parser.add_argument("--no-export", action="store_true")
    parser.add_argument("--studies", type=int, default=10_000)
    parser.add_argument("--redis-url", default=common.REDIS_URL)
    parser.add_argument("--fanout-cpu", action="store_true")
    args = parser.parse_args()

    # Production services need the audit chain's key (docs/audit.md); a throwaway one per run.
    os.environ.setdefault("PRIZMED_AUDIT_KEY", f"bench-only-audit-key-{secrets.token_hex(16)}")
    s = common.setup(services=True, redis_url=args.redis_url)
    s.env.update(
        RECORDS_MAX_STREAMS_PER_KEY=str(args.clients + 10),
        RECORDS_STREAM_BUFFER_EVENTS=str(args.buffer),
        DB_CONN_MAX_AGE=os.environ.get("DB_CONN_MAX_AGE", "0"),
    )
    os.environ.update(s.env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "prizmed.settings"
    import django

    django.setup()
    if args.fanout_cpu:
        cpu = fanout_cpu(args.clients)
        print(f"| in-process fan-out, {args.clients} streams | {cpu:.2f} ms CPU per event, "
              f"{cpu / args.clients * 1000:.1f} µs per stream |")  # fmt: skip
        return
    from django.db import transaction

    from accounts.models import Organization
    from tests.support.records_support import index_study

    live_key = {"Authorization": f"Bearer {s.issue_key('bench-live')}"}
    index_study(Organization.objects.get(slug="bench-live"), patient_id="P1", study_uid="1.2.3.1", instances=4)
    assert transaction.get_autocommit()

    # The servers log at INFO: their log readers' counts come as a log line.
    servers = [live.server({**s.env, "LOG_LEVEL": "INFO"}, s.data_dir) for _ in range(args.servers)]
    try:
        fig = latency(servers, live_key, args.clients, args.changes, args.burst, args.client_procs, not args.no_stall)
    finally:
        for srv in servers:
            srv.stop()
    pool = s.env.get("DB_POOL_MAX_SIZE", "10 (default)")
    print(f"Mode: PostgreSQL + Redis, {args.servers} uvicorn processes, {args.client_procs} client processes, "
          f"{'one stalled client, ' if not args.no_stall else ''}RECORDS_STREAM_BUFFER_EVENTS={args.buffer}, "
          f"DB_POOL_MAX_SIZE={pool}.\n")  # fmt: skip
    print("| run | commit → SSE event | missed / repeated / out of order |")
    print("|---|---|---|")
    latency_table(args, fig)
    if args.no_export:
        return

    seed_export(args.studies)
    export_key = {"Authorization": f"Bearer {s.issue_key('bench-export')}"}
    server = common.start_server(s)
    try:
        count, rate, rss = export(server, export_key)
    finally:
        server.stop()
    as_dict, as_model = build_costs()
    print()
    print("| measurement | result |")
    print("|---|---|")
    print(f"| NDJSON export, {args.studies:,} studies ({count:,} resources) | {rate:,.0f} resources/s, "
          f"server RSS +{rss:.1f} MB |")  # fmt: skip
    print(f"| build one ImagingStudy (4 instances): dict + json / R4B model | {as_dict:.0f} µs / {as_model:.0f} µs |")


if __name__ == "__main__":
    main()
