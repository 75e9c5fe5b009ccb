"""Orthanc against PrizMed (embedded and production) on the same data, in one run (issue 19).

    .venv/bin/python -m bench.compare [--runs 3] [--single 60] [--single4 120] [--studies 300]
                                      [--studies-per-body 50] [--bodies 3] [--reads 200]
                                      [--sides orthanc,embedded,production] [--rows single1,...]

Issue 19's scale: `--single 100 --single4 200 --studies 1000 --bodies 4 --reads 300` (~12 min).

The command re-executes itself in a private network namespace (`unshare --net`, only `lo` up;
Orthanc 1.10 binds 0.0.0.0). In there it starts, side by side:
- **Orthanc** 1.10 (Debian) with its DICOMweb plugin, storage under var/;
- **PrizMed embedded**: one uvicorn process, SQLite, no Redis, tasks on a server thread;
- **PrizMed production**: PostgreSQL through its Unix socket (a fresh database), a private
  `redis-server`, uvicorn with 4 worker processes, 2 Celery workers (concurrency 1 each).
Each run goes through every row, and within a row through every side, the order of the sides
rotating from run to run; every side gets the same freshly made instances (tests/dicomfactory.py).

Bodies of many instances go to Orthanc as one DICOMweb STOW-RS request (`multipart/related`,
the same framing as PrizMed's `application/dicom+stream`): the 50-per-body row, and the many-studies
row (50 studies per body by default: issue 19's figures for that row were evidently measured so —
with one study per request PrizMed indexes ~4× fewer per second than the row says;
`--studies-per-body 1` runs that variant).

"Until indexed": Orthanc answers `POST /instances` (and STOW-RS) once the instance is stored and
indexed, so its clock stops at the last answer. PrizMed answers 202 once the bytes are stored;
the client then polls `GET /api/v2/dicom/uploads/{request_id}` of the last upload it sent until
`done`, and the run's end is the latest time any of its uploads became `done` (the `updated`
column, read from the database once the last one is done, which also proves every one is done).

Server CPU is the user + system time of the server-side processes from the start of a row's run
to its end: Orthanc's process; the embedded uvicorn process; in production the uvicorn tree, the
Celery trees, the private Redis, and the PostgreSQL backends of the bench's database: those
alive at the end exactly; those that exited meanwhile from the postmaster's reaped-children time,
which covers every database on the machine, so only in the share of the sessions that ended in
the bench database (both session counts and the raw time are printed: when they are equal, no
one else's session ended and the attribution is exact). The clients run in this process, on the
same 2 cores.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from pydicom.uid import generate_uid

from bench import common, index, peer
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.multipart import build_multipart

CT_PIXELS = 512 * 1024  # + ~600 bytes of header: a 0.5 MB CT slice
SMALL_PIXELS = 79_400  # ≈ 80 kB instances for the many-studies row
BOUNDARY = "bench-compare-boundary"
MAX_WAIT = 600.0  # seconds an upload may take to be indexed before the run counts as failed
# What a failing side raises: the run records it and goes on with the other sides.
FAILURES = (RuntimeError, httpx.HTTPError, OSError, ValueError, KeyError)


@dataclass
class Receipt:
    """What a side answered for one request: its key (Orthanc instance ID / PrizMed request
    id), when, and for how many instances."""

    key: str
    answered: float
    instances: int = 1


@dataclass
class Finish:
    end: float  # wall-clock time all of the run's instances were indexed
    cpu: dict[str, float]  # the side's CPU reading at that moment


class Side(Protocol):
    name: str
    headers: dict[str, str]

    @property
    def url(self) -> str: ...

    def single(self, client: httpx.Client, data: bytes, study_uid: str) -> Receipt: ...

    def batch(self, client: httpx.Client, parts: list[bytes], study_uid: str) -> Receipt: ...

    def finish(self, client: httpx.Client, receipts: list[Receipt]) -> Finish: ...

    def summary_path(self, study_uid: str) -> str: ...

    def cpu(self) -> dict[str, float]: ...

    def memory(self) -> tuple[float, float, int]: ...

    def stop(self) -> None: ...


# --- Orthanc ---------------------------------------------------------------------------------


@dataclass
class OrthancSide:
    orthanc: peer.Orthanc
    name: str = "Orthanc"
    headers: dict[str, str] = field(default_factory=dict)
    study_ids: dict[str, str] = field(default_factory=dict)  # Study Instance UID → Orthanc study ID

    @property
    def url(self) -> str:
        return self.orthanc.url

    def single(self, client: httpx.Client, data: bytes, study_uid: str) -> Receipt:
        response = client.post("/instances", content=data, headers={"Content-Type": "application/dicom"})
        answered = time.time()
        body = response.json()
        if response.status_code != 200 or body.get("Status") not in ("Success", "AlreadyStored"):
            raise RuntimeError(f"Orthanc POST /instances: {response.status_code} {response.text[:300]}")
        self.study_ids[study_uid] = body["ParentStudy"]
        return Receipt(body["ID"], answered)

    def batch(self, client: httpx.Client, parts: list[bytes], study_uid: str) -> Receipt:
        """STOW-RS: one multipart/related body of `parts` to the DICOMweb plugin."""
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={BOUNDARY}',
            "Accept": "application/dicom+json",
        }
        response = client.post("/dicom-web/studies", content=build_multipart(parts, BOUNDARY), headers=headers)
        answered = time.time()
        body = response.json() if response.status_code == 200 else {}
        stored = body.get("00081199", {}).get("Value", [])
        failed = body.get("00081198", {}).get("Value", [])  # Orthanc sends the sequence, empty
        if response.status_code != 200 or failed or len(stored) != len(parts):
            raise RuntimeError(f"Orthanc STOW-RS: {response.status_code} {response.text[:300]}")
        return Receipt(study_uid, answered, len(parts))

    def finish(self, client: httpx.Client, receipts: list[Receipt]) -> Finish:
        return Finish(max(r.answered for r in receipts), self.cpu())

    def summary_path(self, study_uid: str) -> str:
        if study_uid not in self.study_ids:  # stored by STOW-RS, which answers with UIDs only
            found = httpx.post(f"{self.url}/tools/lookup", content=study_uid).json()
            self.study_ids[study_uid] = next(f["ID"] for f in found if f["Type"] == "Study")
        return f"/studies/{self.study_ids[study_uid]}"

    def cpu(self) -> dict[str, float]:
        return {"Orthanc": self.orthanc.cpu_seconds()}

    def memory(self) -> tuple[float, float, int]:
        return (*self.orthanc.memory_mb(), 1)

    def stop(self) -> None:
        self.orthanc.stop()


# --- PrizMed ---------------------------------------------------------------------------------


EXITED = "PostgreSQL (exited backends, all databases)"
OURS = "sessions (bench db)"
EVERY = "sessions (all dbs)"


def attributed_cpu(cpu: dict[str, float]) -> float:
    """Server CPU of a run: every process part, plus the exited PostgreSQL backends' time in
    the share of the sessions that ended in the bench database (the postmaster's reaped-children
    time covers every database; equal session counts mean nobody else's sessions ended)."""
    total = sum(v for k, v in cpu.items() if k not in (EXITED, OURS, EVERY))
    if cpu.get(EVERY, 0.0) > 0:
        total += cpu.get(EXITED, 0.0) * min(1.0, cpu.get(OURS, 0.0) / cpu[EVERY])
    return total


class PgMeter:
    """CPU of the PostgreSQL backends serving one database, read from /proc (the server runs on
    this machine, in the same PID namespace), through a monitoring session on `postgres`."""

    def __init__(self, admin_url: str, database: str) -> None:
        import psycopg

        self.database = database
        self.conn = psycopg.connect(admin_url, autocommit=True)
        own = self.conn.execute("SELECT pg_backend_pid()").fetchone()
        assert own is not None
        self.postmaster = int(Path(f"/proc/{own[0]}/stat").read_text().rpartition(")")[2].split()[1])
        self.excluded: set[int] = set()

    def reading(self) -> dict[str, float]:
        rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,)).fetchall()
        live_cpu = 0.0
        for (pid,) in rows:
            if pid not in self.excluded:
                try:
                    live_cpu += peer.cpu_seconds(pid, reaped_children=False)
                except OSError:
                    continue
        stats = self.conn.execute("SELECT datname, sessions FROM pg_stat_database WHERE datname IS NOT NULL").fetchall()
        sessions: dict[str, int] = {name: count for name, count in stats}
        fields = Path(f"/proc/{self.postmaster}/stat").read_text().rpartition(")")[2].split()
        exited = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
        return {
            "PostgreSQL (live backends)": live_cpu,
            EXITED: exited,
            OURS: float(sessions.get(self.database, 0)),
            EVERY: float(sum(sessions.values())),
        }


@dataclass
class PrizmedSide:
    name: str
    setup: common.Setup
    server: live.Server
    headers: dict[str, str]
    workers: list[live.Process] = field(default_factory=list)
    redis: peer.PrivateRedis | None = None
    pg: PgMeter | None = None
    poll: float = 0.2
    _check: Any = None  # a database connection of the bench's own, for the final `done` check

    @property
    def url(self) -> str:
        return self.server.url

    def _post(self, client: httpx.Client, body: bytes, content_type: str, study_uid: str, count: int) -> Receipt:
        request_id = str(uuid.uuid4())
        headers = {**self.headers, "Content-Type": content_type, "X-Request-Id": request_id}
        response = client.post("/api/v2/dicom/stream", content=body, headers=headers)
        answered = time.time()
        if response.status_code != 202:
            raise RuntimeError(f"{self.name} POST /dicom/stream: {response.status_code} {response.text[:300]}")
        return Receipt(response.json()["request_id"], answered, count)

    def single(self, client: httpx.Client, data: bytes, study_uid: str) -> Receipt:
        return self._post(client, data, "application/dicom", study_uid, 1)

    def batch(self, client: httpx.Client, parts: list[bytes], study_uid: str) -> Receipt:
        content_type = f"application/dicom+stream; boundary={BOUNDARY}"
        return self._post(client, build_multipart(parts, BOUNDARY), content_type, study_uid, len(parts))

    def finish(self, client: httpx.Client, receipts: list[Receipt]) -> Finish:
        """Poll the last upload sent until `done`, then read when every upload became `done`."""
        last = max(receipts, key=lambda r: r.answered)
        deadline = time.monotonic() + MAX_WAIT
        while (state := client.get(f"/api/v2/dicom/uploads/{last.key}", headers=self.headers).json())["state"] not in (
            "done",
            "failed",
        ):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: upload {last.key} still {state['state']} after {MAX_WAIT:.0f} s")
            time.sleep(self.poll)
        cpu = self.cpu()
        if state["state"] != "done":
            raise RuntimeError(f"{self.name}: upload {last.key} failed: {state}")
        while True:
            done, indexed, rejected, end = self._done(receipts)
            if done == len(receipts):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name}: {len(receipts) - done} uploads not done after {MAX_WAIT:.0f} s")
            time.sleep(self.poll)  # one finished after the last one sent: rare, but then wait for it
            cpu = self.cpu()
        expected = sum(r.instances for r in receipts)
        if indexed != expected or rejected:
            raise RuntimeError(f"{self.name}: {indexed} of {expected} instances indexed, {rejected} rejected")
        return Finish(end, cpu)

    def _done(self, receipts: list[Receipt]) -> tuple[int, int, int, float]:
        """How many of the uploads are `done`, their instances indexed and rejected, and the
        latest time one of them became `done` (epoch seconds)."""
        url = self.setup.env["DATABASE_URL"]
        query = (
            "SELECT count(*), sum(instances_indexed), sum(instances_rejected), max(updated) "
            "FROM studies_upload WHERE state = 'done' AND id IN ({})"
        )
        if url.startswith("sqlite:///"):
            if self._check is None:
                self._check = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30)
            keys = [uuid.UUID(r.key).hex for r in receipts]  # Django keeps UUIDs as 32 hex digits in SQLite
            row = self._check.execute(query.format(",".join("?" * len(keys))), keys).fetchone()
            latest = datetime.fromisoformat(row[3]).replace(tzinfo=UTC) if row[3] else None
        else:
            if self._check is None:
                import psycopg

                self._check = psycopg.connect(url, autocommit=True)
                if self.pg is not None:
                    self.pg.excluded.add(self._check.info.backend_pid)
            keys = [r.key for r in receipts]
            row = self._check.execute(query.format(",".join(["%s::uuid"] * len(keys))), keys).fetchone()
            latest = row[3]
        return int(row[0]), int(row[1] or 0), int(row[2] or 0), latest.timestamp() if latest else 0.0

    def summary_path(self, study_uid: str) -> str:
        return f"/api/v2/studies/{study_uid}"

    def _pids(self) -> dict[str, list[int]]:
        pids = {"uvicorn": [_pid(self.server)]}
        if self.workers:
            pids["Celery"] = [_pid(w) for w in self.workers]
        if self.redis is not None and self.redis.proc is not None:
            pids["Redis"] = [self.redis.proc.pid]
        return pids

    def cpu(self) -> dict[str, float]:
        reading = {part: sum(peer.tree_cpu_seconds(p) for p in pids) for part, pids in self._pids().items()}
        if self.pg is not None:
            reading.update(self.pg.reading())
        return reading

    def memory(self) -> tuple[float, float, int]:
        """uvicorn and Celery processes (Redis and PostgreSQL are not counted)."""
        pids = [m for part in ("uvicorn", "Celery") for p in self._pids().get(part, []) for m in peer.process_tree(p)]
        return (*peer.memory_mb(pids), len(pids))

    def memory_detail(self) -> list[tuple[str, float, float]]:
        """Each uvicorn and Celery process: its part and command line, RSS and PSS in MB."""
        detail = []
        for part in ("uvicorn", "Celery"):
            for root in self._pids().get(part, []):
                for pid in peer.process_tree(root):
                    rss, pss = peer.memory_mb([pid])
                    detail.append((f"{part} {'parent' if pid == root else 'child'}: {_command(pid)}", rss, pss))
        return detail

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.server.stop()
        if self._check is not None:
            self._check.close()
        if self.pg is not None:
            self.pg.conn.close()
        if self.redis is not None:
            self.redis.stop()


def _command(pid: int) -> str:
    """A process's command line, shortened for a report."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    text = " ".join(a.decode(errors="replace") for a in argv if a)
    return text.replace(sys.executable, "python")[:90]


def _pid(process: live.Process) -> int:
    assert process.proc is not None
    return process.proc.pid


def start_embedded() -> PrizmedSide:
    s = common.setup(services=False)
    key = s.issue_key("bench")
    return PrizmedSide("PrizMed embedded", s, common.start_server(s), {"Authorization": f"Bearer {key}"})


def start_production(var: Path) -> PrizmedSide:
    redis = peer.PrivateRedis(var).start()
    try:
        s = common.setup(services=True, pg_admin_url=peer.PG_SOCKET_ADMIN_URL, redis_url=redis.url)
        key = s.issue_key("bench")
        port = live.free_port()
        argv = [sys.executable, "-m", "uvicorn", "prizmed.asgi:application", "--host", "127.0.0.1",
                "--port", str(port), "--workers", "4", "--lifespan", "off", "--no-access-log",
                "--ws-max-size", "8388608", "--ws-max-queue", "4"]  # fmt: skip
        server = live.Server(argv=argv, env=s.env, log_path=s.data_dir / f"uvicorn-{port}.log", port=port)
        server.start()
        side = PrizmedSide("PrizMed production", s, server, {"Authorization": f"Bearer {key}"}, redis=redis)
        side.workers = index.start_workers(s, 2)
        side.pg = PgMeter(peer.PG_SOCKET_ADMIN_URL, s.env["DATABASE_URL"].rsplit("/", 1)[1])
        return side
    except BaseException:
        redis.stop()
        raise


# --- workloads -------------------------------------------------------------------------------


@dataclass
class Outcome:
    rate: float  # instances/s until indexed
    cpu: dict[str, float]  # server CPU used over the run, seconds per part
    receipts: list[Receipt]


Job = tuple[str, list[bytes], list[str]]  # ("single" | "batch", instances, their studies' UIDs)


def run_jobs(side: Side, per_client: list[list[Job]]) -> Outcome:
    """Each client (a thread with its own keep-alive connection) sends its jobs in order; the
    run ends when the side has indexed everything."""
    receipts: list[Receipt] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client_loop(jobs: list[Job]) -> None:
        try:
            with httpx.Client(base_url=side.url, headers=side.headers, timeout=300) as client:
                for kind, parts, study_uids in jobs:
                    if kind == "single":
                        receipt = side.single(client, parts[0], study_uids[0])
                    else:
                        receipt = side.batch(client, parts, study_uids[0])
                    with lock:
                        receipts.append(receipt)
        except FAILURES as exc:  # raised again by the caller
            errors.append(exc)

    threads = [threading.Thread(target=client_loop, args=(jobs,)) for jobs in per_client]
    before = side.cpu()
    started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    with httpx.Client(base_url=side.url, timeout=60) as client:
        finish = side.finish(client, receipts)
    instances = sum(r.instances for r in receipts)
    used = {part: finish.cpu[part] - before.get(part, 0.0) for part in finish.cpu}
    return Outcome(instances / (finish.end - started), used, receipts)


def single_jobs(run: int, row: str, count: int, clients: int) -> list[list[Job]]:
    """`count` CT instances, one per request; each client sends one study of its own."""
    per_client = []
    for c in range(clients):
        study_uid, series_uid = generate_uid(), generate_uid()
        jobs: list[Job] = []
        for n in range(count // clients):
            data = make_instance(patient_id=f"{row}-{run}-{c}", study_uid=study_uid, series_uid=series_uid,
                                 instance_number=n + 1, pixel_bytes=CT_PIXELS)  # fmt: skip
            jobs.append(("single", [data], [study_uid]))
        per_client.append(jobs)
    return per_client


def studies_jobs(run: int, count: int, clients: int, per_body: int) -> list[list[Job]]:
    """`count` studies of one ~80 kB instance each, each its own patient, one per request (or
    `per_body` to a body), dealt to the clients."""
    uids = [str(generate_uid()) for _ in range(count)]
    instances = [make_instance(patient_id=f"S{run}-{i}", patient_name=f"Many^{i}", study_uid=uid,
                               accession=f"A{i}", pixel_bytes=SMALL_PIXELS) for i, uid in enumerate(uids)]  # fmt: skip
    jobs: list[Job] = [
        ("single" if per_body == 1 else "batch", instances[i : i + per_body], uids[i : i + per_body])
        for i in range(0, count, per_body)
    ]
    return [jobs[c::clients] for c in range(clients)]


def batch_jobs(run: int, bodies: int, per_body: int = 50) -> list[list[Job]]:
    """`bodies` studies of `per_body` CT instances, one study per body, one client."""
    jobs: list[Job] = []
    for b in range(bodies):
        study_uid, series_uid = generate_uid(), generate_uid()
        parts = [make_instance(patient_id=f"B{run}-{b}", study_uid=study_uid, series_uid=series_uid,
                               instance_number=n + 1, pixel_bytes=CT_PIXELS) for n in range(per_body)]  # fmt: skip
        jobs.append(("batch", parts, [study_uid]))
    return [jobs]


def read_latency(side: Side, studies: list[str], reads: int) -> tuple[float, float]:
    """p50 and p95 (ms) of sequential study summary reads on one keep-alive connection."""
    samples = []
    paths = [side.summary_path(uid) for uid in studies]
    with httpx.Client(base_url=side.url, headers=side.headers, timeout=30) as client:
        for n in range(reads + 20):
            path = paths[n % len(paths)]
            started = time.perf_counter()
            response = client.get(path)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{side.name} GET {path}: {response.status_code} {response.text[:200]}")
            if n >= 20:  # the first 20 warm up
                samples.append(elapsed)
    return common.percentiles(samples)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Results:
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    cpu_parts: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def add(self, row: str, side: str, value: float) -> None:
        self.values.setdefault((row, side), []).append(value)

    def median(self, row: str, side: str) -> float | None:
        got = self.values.get((row, side))
        return statistics.median(got) if got else None


ROWS = {
    "single1": "CT 0.5 MB, one instance per request, 1 client, instances/s until indexed ↑",
    "single4": "same, 4 clients ↑",
    "studies": "{studies:,} one-instance studies (80 kB, {clients} clients, {per_body}), instances/s until indexed ↑",
    "batch": "50 instances per body (CT 0.5 MB, 1 client; Orthanc: STOW-RS, 50 parts), instances/s until indexed ↑",
    "read50": "study summary read p50, ms (Orthanc `/studies/{{id}}`, PrizMed `GET /api/v2/studies/{{uid}}`) ↓",
    "read95": "study summary read p95, ms ↓",
    "cpu": "server CPU per single-instance upload (1-client row), ms ↓",
    "rss": "idle RSS after start, MB (PSS) ↓",
}


def one_run(run: int, sides: list[Side], args: argparse.Namespace, results: Results) -> None:
    order = sides[run % len(sides) :] + sides[: run % len(sides)]
    workloads: list[tuple[str, Callable[[], list[list[Job]]]]] = [
        ("single1", lambda: single_jobs(run, "one", args.single, 1)),
        ("single4", lambda: single_jobs(run, "four", args.single4, 4)),
        ("studies", lambda: studies_jobs(run, args.studies, args.studies_clients, args.studies_per_body)),
        ("batch", lambda: batch_jobs(run, args.bodies)),
    ]
    for row, make in workloads:
        if row not in args.rows.split(","):
            continue
        jobs = make()  # the same instances for every side
        for side in order:
            try:
                outcome = run_jobs(side, jobs)
            except FAILURES as exc:
                results.failures.append(f"run {run + 1}, {row}, {side.name}: {exc}")
                continue
            results.add(row, side.name, outcome.rate)
            if row == "single1":
                results.add("cpu", side.name, attributed_cpu(outcome.cpu) / args.single * 1000)
                results.cpu_parts.setdefault(side.name, []).append(outcome.cpu)
            if row == "studies":
                # The same studies on every side: UIDs are random, so their order is a random pick.
                picks = sorted(uid for client in jobs for _, _, uids in client for uid in uids)[: args.reads]
                try:
                    p50, p95 = read_latency(side, picks, args.reads)
                except FAILURES as exc:
                    results.failures.append(f"run {run + 1}, reads, {side.name}: {exc}")
                    continue
                results.add("read50", side.name, p50)
                results.add("read95", side.name, p95)


def warm_up(side: Side) -> None:
    jobs = single_jobs(-1, "warm", 5, 1)
    run_jobs(side, jobs)
    run_jobs(side, batch_jobs(-1, 1, per_body=5))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def fmt(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:,.0f}" if value >= 100 else f"{value:.2f}" if value < 10 else f"{value:.1f}"


def report(sides: list[Side], results: Results, args: argparse.Namespace, memory: dict[str, str]) -> None:
    orthanc = next((s.name for s in sides if isinstance(s, OrthancSide)), None)
    _report_table(orthanc, [s.name for s in sides if s.name != orthanc], results, args, memory)
    _report_runs(sides, results)
    _report_cpu(results, args)
    if results.failures:
        print()
        print("Failures:")
        for failure in results.failures:
            print(f"- {failure}")


def _report_table(
    orthanc: str | None, others: list[str], results: Results, args: argparse.Namespace, memory: dict[str, str]
) -> None:
    """The markdown table: one row per workload, each PrizMed side beside its ratio to Orthanc."""
    head = ["", *([orthanc] if orthanc else []), *[c for name in others for c in (name, "÷ Orthanc")]]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    per_body = "one per request" if args.studies_per_body == 1 else f"{args.studies_per_body} per body"
    for row, label in ROWS.items():
        if not any((row, name) in results.values for name in [*([orthanc] if orthanc else []), *others]):
            continue  # a row left out with --rows
        cells = [label.format(studies=args.studies, clients=args.studies_clients, per_body=per_body)]
        base = results.median(row, orthanc) if orthanc else None
        if orthanc:
            cells.append(memory[orthanc] if row == "rss" else fmt(base))
        for name in others:
            value = results.median(row, name)
            cells.append(memory.get(name, "–") if row == "rss" else fmt(value))
            cells.append(f"{value / base:.2f}×" if value is not None and base else "–")
        print("| " + " | ".join(cells) + " |")


def _report_runs(sides: list[Side], results: Results) -> None:
    print()
    print("Per run (in run order):")
    for row in ROWS:
        for each in sides:
            if values := results.values.get((row, each.name)):
                print(f"- {row}, {each.name}: " + ", ".join(fmt(v) for v in values))


def _report_cpu(results: Results, args: argparse.Namespace) -> None:
    print()
    print("Server CPU per single-instance upload, median of each part over the runs (ms per upload;")
    print("PostgreSQL sessions: opened per upload):")
    for name, readings in results.cpu_parts.items():
        parts = []
        for part in readings[0]:
            value = statistics.median(r[part] for r in readings) / args.single
            parts.append(f"{part} {value:.2f}" if part.startswith("sessions") else f"{part} {value * 1000:.2f} ms")
        print(f"- {name}: " + "; ".join(parts))


def _report_memory(details: dict[str, list[tuple[str, float, float]]]) -> None:
    print()
    print("Idle memory per process after start, RSS (PSS) MB:")
    for name, rows in details.items():
        for what, rss, pss in rows:
            print(f"- {name}, {what}: {rss:.0f} ({pss:.0f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--single", type=int, default=60, help="instances of the 1-client row")
    parser.add_argument("--single4", type=int, default=120, help="instances of the 4-client row")
    parser.add_argument("--studies", type=int, default=300, help="one-instance studies (the issue: 1000)")
    parser.add_argument("--studies-clients", type=int, default=4)
    parser.add_argument(
        "--studies-per-body",
        type=int,
        default=50,
        help="one-instance studies per request (STOW-RS on Orthanc); 50 as in issue 19's row, 1: one per request",
    )
    parser.add_argument("--bodies", type=int, default=3, help="bodies of 50 instances")
    parser.add_argument("--reads", type=int, default=200, help="study summary reads per run")
    parser.add_argument("--sides", default="orthanc,embedded,production")
    parser.add_argument(
        "--rows", default="single1,single4,studies,batch", help="upload rows to run (reads follow studies)"
    )
    args = parser.parse_args()
    peer.reexec_in_netns("bench.compare")

    var = live.ROOT / "var"
    chosen = args.sides.split(",")
    print(f"Load before: {uptime()}", flush=True)
    sides: list[Side] = []
    memory: dict[str, str] = {}
    details: dict[str, list[tuple[str, float, float]]] = {}
    results = Results()
    try:
        if "orthanc" in chosen:
            orthanc = peer.Orthanc(var).start()
            sides.append(OrthancSide(orthanc))
            print(f"Orthanc {orthanc.url}: {peer.check_unreachable_from_outside(orthanc.port)}", flush=True)
        if "embedded" in chosen:
            sides.append(start_embedded())
        if "production" in chosen:
            sides.append(start_production(var))
        time.sleep(2)  # let every process finish starting before the idle reading
        for side in sides:
            rss, pss, count = side.memory()
            results.add("rss", side.name, rss)
            memory[side.name] = f"{rss:.0f} ({pss:.0f}), {count} process{'es' if count > 1 else ''}"
            if isinstance(side, PrizmedSide):
                details[side.name] = side.memory_detail()
        for side in sides:
            warm_up(side)
        for run in range(args.runs):
            one_run(run, sides, args, results)
            print(f"run {run + 1} of {args.runs} done; {uptime()}", flush=True)
    finally:
        for side in sides:
            side.stop()
    print(f"Load after: {uptime()}")
    print()
    report(sides, results, args, memory)
    _report_memory(details)


if __name__ == "__main__":
    main()
