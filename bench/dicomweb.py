"""DICOMweb benchmark (issue 11): one workload, run against Orthanc's DICOMweb plugin and
PrizMed's `/api/v2/dicomweb` in one command, interleaved run by run.

    .venv/bin/python -m bench.dicomweb [--prizmed production|embedded] [--runs 3] [--qido-studies 1000]
    .venv/bin/python -m bench.dicomweb --peer-only        # Orthanc alone
    .venv/bin/python -m bench.dicomweb --s3               # plus PrizMed storing in S3 (issue 15)

Like bench/compare.py, the command re-executes itself in a private network namespace (Orthanc
1.10 binds 0.0.0.0) and starts everything there: Orthanc 1.10 with its DICOMweb plugin 1.7, and,
unless `--peer-only`, PrizMed (production: PostgreSQL through its socket, a private Redis, 4
uvicorn workers, 2 Celery workers; or embedded). The workload only knows a DICOMweb base URL and
the headers to send (PrizMed: a Bearer key), so each target is a `Target`.

Rows (medians over the runs; ratio = PrizMed ÷ Orthanc, arrows say which way is better):
- STOW-RS, 1 client, bodies of 50: CT 200 × 0.5 MB (one series), MR 700 × ~77 kB (7 series);
  each run stores new instances (the same ones on every target). A `202` (PrizMed's answer when
  indexing outlasts its bound) is followed by QIDO until the study shows every instance.
- QIDO-RS `/studies` over 1,000 one-instance studies stored before the runs: PatientID (1 match),
  PatientName wildcard `FamNN*` (100 matches), StudyDate range of one month (28-31 matches).
- WADO-RS series metadata of the 200-instance CT series.
- WADO-RS whole study (CT, then MR), `curl` as the client, warm (one untimed read first), MB/s.
- Frames (`/frames/1`), rendered and thumbnails of random CT instances. Orthanc's plugin 1.7 has
  `/rendered` (study, series, instance, frame) but no `/thumbnail` route: its thumbnail row is
  `/rendered?viewport=128,128`, which is what a viewer falls back to.

With `--s3`, a second PrizMed of the same mode stores its objects in S3 (moto's server, started
in the namespace on port 5599) and runs the same rows beside the local-file one;
`--prizmed-only` leaves Orthanc out (where it is not installed).
"""

from __future__ import annotations

import argparse
import datetime
import os
import random
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pydicom.uid import generate_uid

from bench import common, compare, peer
from tests.support import live, s3
from tests.support.dicomfactory import make_instance
from tests.support.multipart import build_multipart

BOUNDARY = "bench-dicomweb-boundary"
S3_PORT = 5599
STOW_TYPE = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
DICOM_JSON = "application/dicom+json"
WADO_ACCEPT = 'multipart/related; type="application/dicom"; transfer-syntax=*'
FRAMES_ACCEPT = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
CT_PIXELS = compare.CT_PIXELS
MR_PIXELS = 76_800  # 256 × 300 × 8 bits + ~600 bytes of header ≈ 77 kB
QIDO_FIRST_DATE = datetime.date(2020, 1, 1)
# A GET: its path, headers, and a check of the answer's content.
Request = tuple[str, dict[str, str], Callable[[httpx.Response], bool]]


@dataclass
class Target:
    """A DICOMweb server: its base URL, the headers every request carries, and the path (under
    an instance) that answers a thumbnail."""

    name: str
    base: str
    headers: dict[str, str]
    thumbnail: str = "thumbnail"

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base, headers=self.headers, timeout=300)


@dataclass
class Study:
    uid: str
    series: dict[str, list[str]]  # series UID → SOP Instance UIDs
    parts: list[bytes] = field(repr=False)

    @property
    def bytes(self) -> int:
        return sum(len(p) for p in self.parts)


def make_study(modality: str, series: int, per_series: int, pixels: int, patient: str) -> Study:
    uid, members, parts = str(generate_uid()), {}, []
    for s in range(series):
        series_uid, sops = str(generate_uid()), []
        for n in range(per_series):
            sop = str(generate_uid())
            parts.append(make_instance(patient_id=patient, study_uid=uid, series_uid=series_uid, sop_uid=sop,
                                       modality=modality, series_number=s + 1, instance_number=n + 1,
                                       pixel_bytes=pixels))  # fmt: skip
            sops.append(sop)
        members[series_uid] = sops
    return Study(uid, members, parts)


# --- requests ----------------------------------------------------------------------------------


def stow(target: Target, client: httpx.Client, parts: list[bytes], per_body: int = 50) -> bool:
    """Store `parts` in bodies of `per_body`; True if every body was answered `200` (stored)."""
    complete = True
    for start in range(0, len(parts), per_body):
        body = build_multipart(parts[start : start + per_body], BOUNDARY)
        response = client.post("/studies", content=body, headers={"Content-Type": STOW_TYPE, "Accept": DICOM_JSON})
        if response.status_code not in (200, 202):
            raise RuntimeError(f"{target.name} STOW-RS: {response.status_code} {response.text[:300]}")
        answer = response.json()
        if answer.get("00081198", {}).get("Value"):
            raise RuntimeError(f"{target.name} STOW-RS: failed instances {answer['00081198']}")
        complete &= response.status_code == 200
    return complete


def instance_count(client: httpx.Client, study_uid: str) -> int:
    response = client.get(
        "/studies",
        params={"StudyInstanceUID": study_uid, "includefield": "NumberOfStudyRelatedInstances"},
        headers={"Accept": DICOM_JSON},
    )
    found = response.json() if response.status_code == 200 else []
    return int(found[0]["00201208"]["Value"][0]) if found else 0


def stow_rate(target: Target, study: Study) -> tuple[float, float]:
    """Instances/s and MB/s of storing `study` (until it is all queryable)."""
    with target.client() as client:
        started = time.perf_counter()
        if not stow(target, client, study.parts):
            deadline = time.monotonic() + compare.MAX_WAIT
            while instance_count(client, study.uid) < len(study.parts):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{target.name}: study {study.uid} not complete after STOW")
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
    return len(study.parts) / elapsed, study.bytes / 1e6 / elapsed


def latencies(target: Target, requests: Sequence[Request]) -> list[float]:
    """Sequential GETs on one keep-alive connection; each answer must pass its check."""
    samples = []
    with target.client() as client:
        for path, headers, check in requests:
            started = time.perf_counter()
            response = client.get(path, headers=headers)
            samples.append(time.perf_counter() - started)
            if response.status_code != 200 or not check(response):
                raise RuntimeError(f"{target.name} GET {path}: {response.status_code} {response.text[:200]}")
    return samples


def curl_mb_per_s(target: Target, path: str, expected: int) -> float:
    """MB/s of one whole-study WADO-RS retrieval by curl (body to /dev/null)."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
            "-H", f"Accept: {WADO_ACCEPT}", target.base + path]  # fmt: skip
    for name, value in target.headers.items():
        argv[1:1] = ["-H", f"{name}: {value}"]
    status, size, seconds = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    if status != "200" or int(size) < expected:
        raise RuntimeError(f"{target.name} WADO-RS {path}: {status}, {size} bytes for {expected} stored")
    return int(size) / 1e6 / float(seconds)


# --- the workload --------------------------------------------------------------------------------


def qido_studies(count: int) -> list[bytes]:
    """`count` one-instance studies: PatientID QIDOnnnn, name Famnnnn^Given, one day apart."""
    made = []
    for i in range(count):
        date = (QIDO_FIRST_DATE + datetime.timedelta(days=i)).strftime("%Y%m%d")
        made.append(make_instance(patient_id=f"QIDO{i:04d}", patient_name=f"Fam{i:04d}^Given", study_date=date,
                                  pixel_bytes=1024))  # fmt: skip
    return made


def qido_requests(count: int, reads: int, rng: random.Random) -> dict[str, list[Request]]:
    """For each QIDO row, `reads` queries with their expected number of matches."""
    accept = {"Accept": DICOM_JSON}

    def matches(n: int) -> Callable[[httpx.Response], bool]:
        return lambda response: len(response.json()) == n

    last = QIDO_FIRST_DATE + datetime.timedelta(days=count - 1)
    by_id: list[Request] = []
    by_name: list[Request] = []
    by_date: list[Request] = []
    for _ in range(reads):
        i = rng.randrange(count)
        by_id.append((f"/studies?PatientID=QIDO{i:04d}", accept, matches(1)))
        hundred = rng.randrange(max(1, count // 100))
        expected = min(100, count - hundred * 100)
        by_name.append((f"/studies?PatientName=Fam{hundred:02d}*", accept, matches(expected)))
        first = QIDO_FIRST_DATE + datetime.timedelta(days=rng.randrange(count))
        month = first.replace(day=1)
        end = (month + datetime.timedelta(days=32)).replace(day=1) - datetime.timedelta(days=1)
        inside = (min(end, last) - max(month, QIDO_FIRST_DATE)).days + 1
        by_date.append((f"/studies?StudyDate={month:%Y%m%d}-{end:%Y%m%d}", accept, matches(inside)))
    return {"qido_id": by_id, "qido_name": by_name, "qido_date": by_date}


ROWS = {
    "stow_ct": "STOW-RS CT 200 × 0.5 MB, bodies of 50, instances/s ↑",
    "stow_ct_mb": "same, MB/s ↑",
    "stow_mr": "STOW-RS MR 700 × 77 kB, bodies of 50, instances/s ↑",
    "qido_id": "QIDO /studies?PatientID= over {count:,} studies, p50 ms ↓",
    "qido_name": "QIDO /studies?PatientName=FamNN* (100 matches), p50 ms ↓",
    "qido_date": "QIDO /studies?StudyDate= one-month range, p50 ms ↓",
    "metadata": "series metadata, 200-instance series, p50 ms ↓",
    "wado_ct": "WADO-RS whole study CT (105 MB), curl, warm, MB/s ↑",
    "wado_mr": "WADO-RS whole study MR (54 MB), curl, warm, MB/s ↑",
    "frames": "frames/1 of a CT instance, p50 ms ↓",
    "rendered": "rendered CT instance (JPEG), p50 ms ↓",
    "thumbnail": "thumbnail of a CT instance (Orthanc: rendered?viewport=128,128), p50 ms ↓",
}


@dataclass
class Results:
    values: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    p95: dict[tuple[str, str], list[float]] = field(default_factory=dict)

    def add(self, row: str, target: str, value: float, p95: float | None = None) -> None:
        self.values.setdefault((row, target), []).append(value)
        if p95 is not None:
            self.p95.setdefault((row, target), []).append(p95)


def one_run(run: int, targets: list[Target], args: argparse.Namespace, results: Results) -> None:
    rng = random.Random(run)
    order = targets[run % len(targets) :] + targets[: run % len(targets)]
    ct = make_study("CT", 1, 200, CT_PIXELS, f"CT-{run}")
    mr = make_study("MR", 7, 100, MR_PIXELS, f"MR-{run}")
    for target in order:
        rate, mb = stow_rate(target, ct)
        results.add("stow_ct", target.name, rate)
        results.add("stow_ct_mb", target.name, mb)
    for target in order:
        results.add("stow_mr", target.name, stow_rate(target, mr)[0])

    reads = qido_requests(args.qido_studies, args.reads, rng)
    ((series_uid, sops),) = ct.series.items()
    series = f"/studies/{ct.uid}/series/{series_uid}"
    metadata: Request = (f"{series}/metadata", {"Accept": DICOM_JSON}, lambda r: len(r.json()) == len(sops))
    reads["metadata"] = [metadata] * max(1, args.reads // 5)
    picks = [rng.choice(sops) for _ in range(args.reads)]
    reads["frames"] = [(f"{series}/instances/{sop}/frames/1", {"Accept": FRAMES_ACCEPT}, _frame) for sop in picks]
    reads["rendered"] = [(f"{series}/instances/{sop}/rendered", {"Accept": "image/jpeg"}, _jpeg) for sop in picks]
    for row, requests in reads.items():
        for target in order:
            latencies(target, requests[:5])  # warm-up
            p50, p95 = common.percentiles(latencies(target, requests))
            results.add(row, target.name, p50, p95)
    for target in order:
        thumbs: list[Request] = [
            (f"{series}/instances/{sop}/{target.thumbnail}", {"Accept": "image/jpeg"}, _jpeg) for sop in picks
        ]
        latencies(target, thumbs[:5])
        p50, p95 = common.percentiles(latencies(target, thumbs))
        results.add("thumbnail", target.name, p50, p95)
    for row, study in (("wado_ct", ct), ("wado_mr", mr)):
        for target in order:
            curl_mb_per_s(target, f"/studies/{study.uid}", study.bytes)  # warm
            results.add(row, target.name, statistics.median(
                curl_mb_per_s(target, f"/studies/{study.uid}", study.bytes) for _ in range(args.wado_repeat)
            ))  # fmt: skip


def _frame(response: httpx.Response) -> bool:
    """A multipart answer holding at least one uncompressed CT frame."""
    return response.headers.get("content-type", "").startswith("multipart/related") and (
        len(response.content) >= CT_PIXELS
    )


def _jpeg(response: httpx.Response) -> bool:
    return response.content[:3] == b"\xff\xd8\xff"


def report(targets: list[Target], results: Results, args: argparse.Namespace) -> None:
    names = [t.name for t in targets]
    head = ["", *names, *([f"{names[1]} ÷ {names[0]}"] if len(names) > 1 else [])]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row, label in ROWS.items():
        values = [statistics.median(results.values[(row, n)]) if (row, n) in results.values else None for n in names]
        cells = [label.format(count=args.qido_studies)]
        for name, value in zip(names, values, strict=True):
            p95 = results.p95.get((row, name))
            cells.append(compare.fmt(value) + (f" (p95 {compare.fmt(statistics.median(p95))})" if p95 else ""))
        if len(names) > 1:
            cells.append(f"{values[1] / values[0]:.2f}×" if values[0] and values[1] else "–")
        print("| " + " | ".join(cells) + " |")
    print()
    print("Per run:")
    for (row, name), got in results.values.items():
        print(f"- {row}, {name}: " + ", ".join(compare.fmt(v) for v in got))


def prizmed_target(mode: str, var: Path, s3_env: dict[str, str] | None = None) -> tuple[Target, compare.PrizmedSide]:
    """A PrizMed side; with ``s3_env``, storing in S3 (the side's processes inherit this
    process's environment, so it is set around their start)."""
    saved = dict(os.environ)
    os.environ.update(s3_env or {})
    try:
        side = compare.start_production(var) if mode == "production" else compare.start_embedded()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    name = f"PrizMed {mode}" + (", S3" if s3_env else "")
    target = Target(name, side.url + "/api/v2/dicomweb", side.headers)
    with target.client() as client:
        status = client.get("/studies", params={"limit": "1"}, headers={"Accept": DICOM_JSON}).status_code
    if status != 200:
        side.stop()
        raise SystemExit(f"PrizMed answers {status} at {target.base}/studies (--peer-only runs Orthanc alone)")
    return target, side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--peer-only", action="store_true", help="Orthanc alone: PrizMed rows left out")
    parser.add_argument("--prizmed", choices=("production", "embedded"), default="production")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--qido-studies", type=int, default=1000)
    parser.add_argument("--reads", type=int, default=100, help="requests per latency row and run")
    parser.add_argument("--wado-repeat", type=int, default=3, help="timed whole-study reads per run")
    parser.add_argument("--s3", action="store_true", help="a second PrizMed storing in S3 (moto, port 5599)")
    parser.add_argument("--prizmed-only", action="store_true", help="no Orthanc (where it is not installed)")
    args = parser.parse_args()
    peer.reexec_in_netns("bench.dicomweb")

    var = live.ROOT / "var"
    print(f"Load before: {compare.uptime()}", flush=True)
    sides: list[compare.PrizmedSide] = []
    stops: list[Callable[[], None]] = []
    targets: list[Target] = []
    try:
        if not args.prizmed_only:
            orthanc = peer.Orthanc(var).start()
            stops.append(orthanc.stop)
            print(f"Orthanc {orthanc.url}: {peer.check_unreachable_from_outside(orthanc.port)}", flush=True)
            targets.append(Target("Orthanc", orthanc.url + "/dicom-web", {}, thumbnail="rendered?viewport=128,128"))
            with httpx.Client(base_url=targets[0].base) as client:
                status = client.get("/studies/1.2.3/series/1.2.3/instances/1.2.3/thumbnail").status_code
            print(f"Orthanc DICOMweb plugin 1.7: /thumbnail answers {status}; rows use rendered?viewport=128,128")
        if not args.peer_only:
            target, side = prizmed_target(args.prizmed, var)
            targets.append(target)
            sides.append(side)
        if args.s3 and not args.peer_only:
            moto = s3.moto_server(S3_PORT, var)
            stops.append(moto.stop)
            s3.bucket_create(f"http://127.0.0.1:{S3_PORT}", "bench-dicomweb")
            env = s3.server_env(f"http://127.0.0.1:{S3_PORT}", f"s3://bench-dicomweb/{uuid.uuid4().hex[:8]}")
            env.update(PRIZMED_S3_PART_BYTES=str(8 * 1024 * 1024), PRIZMED_S3_TIMEOUT_SECONDS="30")
            target, side = prizmed_target(args.prizmed, var, env)
            targets.append(target)
            sides.append(side)
        population = qido_studies(args.qido_studies)
        for target in targets:
            with target.client() as client:
                stow(target, client, population)
        results = Results()
        for run in range(args.runs):
            one_run(run, targets, args, results)
            print(f"run {run + 1} of {args.runs} done; {compare.uptime()}", flush=True)
    finally:
        for side in sides:
            side.stop()
        for stop in reversed(stops):
            stop()
    print(f"Load after: {compare.uptime()}")
    print()
    report(targets, results, args)


if __name__ == "__main__":
    main()
