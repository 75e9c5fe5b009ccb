"""The per-request cost of the small reads, in process (issue 19): requests driven straight into
the ASGI application, no server and no client, so the figure is the application's own CPU.

    .venv/bin/python -m bench.read_path [--services] [--requests 500] [--rounds 2]
                                        [--trees /path/of/base,.] [--profile] [--compare-answers]
                                        [--http 2000]

One migrated database (SQLite in a temp dir, or with ``--services`` a fresh PostgreSQL database
and Redis db 11, as production runs) holds a study of 4 series for a Professional-plan key. Each
tree of ``--trees`` (a checkout of the code: "." is this one, another is typically a detached
worktree of the base commit) is run in a process of its own, the trees alternated ``--rounds``
times; each process answers ``--requests`` of every row (after 50 warm-up ones) and prints the
CPU time (user + system, every thread: ``time.process_time``) per request in ms, and the wall
time. ``--profile`` prints a cProfile of the study read instead (this tree only).

``--http N`` serves each tree from a uvicorn process of its own (as bench.compare starts the
embedded one; with ``--services``, one worker on PostgreSQL and Redis) and reads the study N
times from each over HTTP, one client alternating between them: p50 and p95 per tree, and the
CPU its server process spent per read (warm-up included).

``--compare-answers`` sends every tree the same matrix of requests (keys valid, missing, bad,
of another tenant; UIDs valid, unknown, malformed; Accept, Origin, Host, query string variants;
GET, HEAD and other methods) and prints the differences between the trees' answers: status,
headers (names lower-cased, sorted; the rate-limit counts masked) and body bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import common
from tests.support import live

HERE = Path(__file__).resolve()
STUDY_UID = "1.2.826.0.1.3680043.10.511.77"
ORIGIN = "https://viewer.example"
REQUEST_ID = "8f1c7a4e-2b3d-4c5e-9f60-7a8b9c0d1e2f"


# --- The child: one tree's code, in its own process ------------------------------------------
CHILD = r"""
import asyncio, cProfile, json, os, pstats, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
mode, arg = sys.argv[1], json.loads(sys.argv[2])
from prizmed.asgi import application

def scope(method, path, headers=(), query=b""):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
            "headers": [(b"host", b"127.0.0.1:8000"), *headers], "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000)}

async def call(s):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await application(s, receive, send)
    return sent

def answer(sent):
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], start.get("headers", []), body

async def timed(rows, n):
    out = {}
    for name, s in rows.items():
        for _ in range(50):
            status, _, body = answer(await call(dict(s)))
            assert status == 200, (name, status, body)
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(n):
            sent = await call(dict(s))
        assert answer(sent)[0] == 200, answer(sent)
        out[name] = ((time.process_time() - cpu) / n * 1000, (time.perf_counter() - wall) / n * 1000)
    return out

async def profile(rows, n):
    s = rows["study read"]
    for _ in range(50):
        await call(dict(s))
    prof = cProfile.Profile(time.process_time)
    prof.enable()
    for _ in range(n):
        await call(dict(s))
    prof.disable()
    pstats.Stats(prof).sort_stats("cumulative").print_stats(45)

import re
def mask(text):
    # Generated request ids, cookie tokens and dates differ from run to run.
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}",
                  lambda m: m[0] if m[0] == arg.get("rid") else "<rid>", text)
    return re.sub(r"csrftoken=[^;]+; expires=[^;]+", "csrftoken=<token>; expires=<date>", text)

async def answers(cases):
    out = []
    for case in cases:
        headers = [(k.encode(), v.encode()) for k, v in case["headers"]]
        status, hdrs, body = answer(await call(scope(case["method"], case["path"], headers, case["query"].encode())))
        masked = sorted((k.decode().lower(), "<n>" if k.lower().startswith(b"x-ratelimit-") else mask(v.decode()))
                        for k, v in hdrs)
        out.append({"case": case["name"], "status": status, "headers": masked,
                    "body": mask(body.decode("utf-8", "replace"))})
    return out

auth = [(b"authorization", f"Bearer {arg['token']}".encode())]
rows = {"study read": scope("GET", f"/api/v2/studies/{arg['uid']}", auth),
        "series list": scope("GET", f"/api/v2/studies/{arg['uid']}/series", auth)}
if mode == "time":
    print(json.dumps(asyncio.run(timed(rows, arg["n"]))))
elif mode == "profile":
    asyncio.run(profile(rows, arg["n"]))
else:
    print(json.dumps(asyncio.run(answers(arg["cases"]))))
"""

SEED = r"""
import os, sys, json
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
import django
django.setup()
from datetime import date, time
from django.db import transaction
from django.utils import timezone
from accounts.models import Role
from accounts.services import key_issue, key_revoke, organization_ensure
from studies.models import Patient, Series, Study
uid = sys.argv[1]
acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme Hospital")
globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex Imaging")
from accounts.models import Plan
# Timed rows count every request against a limit, as production does, without reaching it.
Plan.objects.create(name="Bench", slug="bench", requests_per_minute=10**9)
bench = organization_ensure(slug="bench", plan_slug="bench", name="Bench")
keys = {"bench": key_issue(organization=bench, name="bench")[1]}
keys["standard"] = key_issue(organization=acme, name="bob")[1]
keys["admin"] = key_issue(organization=acme, name="alice", role=Role.ADMIN)[1]
keys["other"] = key_issue(organization=globex, name="carol")[1]
revoked, keys["revoked"] = key_issue(organization=acme, name="old")
key_revoke(key=revoked)
with transaction.atomic():
    patient = Patient.objects.create(organization=acme, patient_id="P-1", name="Doe^Jane=山田^花子",
                                     birth_date=date(1980, 1, 2), sex="F")
    now = timezone.now()
    study = Study.objects.create(organization=acme, patient=patient, study_uid=uid, study_date=date(2024, 1, 2),
                                 study_time=time(10, 15, 0, 250000), accession_number="ACC-1",
                                 description="Chest CT \u2028 line", referring_physician="Who^Doctor",
                                 modalities=["CT", "SR"], series_count=4, instance_count=40, bytes=123456,
                                 first_received=now, last_received=now)
    # The timed rows read bench's copy of the study (same UID, another tenant).
    bench_patient = Patient.objects.create(organization=bench, patient_id="P-1", name="Doe^Jane")
    bench_study = Study.objects.create(organization=bench, patient=bench_patient, study_uid=uid, modalities=["CT"],
                                       series_count=4, instance_count=40, bytes=123456, first_received=now,
                                       last_received=now)
    for i in range(4):
        Series.objects.create(study=bench_study, series_uid=f"{uid}.{i}", number=i, modality="CT", instance_count=10,
                              bytes=30864, storage_prefix=f"bench/{uid}/{i}/")
    for i in range(4):
        Series.objects.create(study=study, series_uid=f"{uid}.{i}", number=i if i != 2 else None,
                              modality="CT", description=f"Axial {i}", body_part="CHEST", instance_count=10,
                              bytes=30864, storage_prefix=f"acme/{uid}/{i}/" if i else "")
print(json.dumps(keys))
"""


def _cases(keys: dict[str, str]) -> list[dict[str, object]]:
    """The request matrix of --compare-answers."""

    def bearer(name: str) -> tuple[str, str]:
        return ("authorization", f"Bearer {keys[name]}")

    rid = ("x-request-id", REQUEST_ID)
    std = [bearer("standard"), rid]
    variants: dict[str, tuple[list[tuple[str, str]], str]] = {
        "standard": (std, ""),
        "admin": ([bearer("admin"), rid], ""),
        "other tenant": ([bearer("other"), rid], ""),
        "no key": ([rid], ""),
        "malformed key": ([("authorization", "Bearer nope"), rid], ""),
        "basic auth": ([("authorization", "Basic abc"), rid], ""),
        "revoked key": ([bearer("revoked"), rid], ""),
        "key in query": ([rid], f"api_key={keys['standard']}"),
        "key in query, and header": (std, f"key={keys['standard']}"),
        "no request id": ([bearer("standard")], ""),
        "bad request id": ([bearer("standard"), ("x-request-id", "nope")], ""),
        "accept json": ([*std, ("accept", "application/json")], ""),
        "accept any": ([*std, ("accept", "*/*")], ""),
        "accept html": ([*std, ("accept", "text/html")], ""),
        "accept html or json": ([*std, ("accept", "text/html, application/json;q=0.9")], ""),
        "accept json indent": ([*std, ("accept", "application/json; indent=2")], ""),
        "accept problem": ([*std, ("accept", "application/problem+json")], ""),
        "allowed origin": ([*std, ("origin", ORIGIN)], ""),
        "other origin": ([*std, ("origin", "https://evil.example")], ""),
        "forged host": ([*std, ("host", "evil.example")], ""),
        "format json": (std, "format=json"),
        "format xml": (std, "format=xml"),
        "unknown parameter": (std, "foo=bar"),
        "bad query": (std, "a=%ff"),
        "cookie": ([*std, ("cookie", "sessionid=abc; csrftoken=x")], ""),
        "forwarded proto": ([*std, ("x-forwarded-proto", "https")], ""),
    }
    uid = STUDY_UID
    paths = {
        "study": f"/api/v2/studies/{uid}",
        "series": f"/api/v2/studies/{uid}/series",
        "unknown study": "/api/v2/studies/1.2.3.4",
        "unknown series": "/api/v2/studies/1.2.3.4/series",
        "malformed uid": "/api/v2/studies/1..2",
        "malformed uid series": "/api/v2/studies/abc/series",
        "long uid": "/api/v2/studies/1." + "2" * 70,
        "trailing slash": f"/api/v2/studies/{uid}/",
        "series trailing slash": f"/api/v2/studies/{uid}/series/",
        "encoded": "/api/v2/studies/1.2 3",
    }
    cases: list[dict[str, object]] = []
    for pname, path in paths.items():
        for vname, (headers, query) in variants.items():
            cases.append({"name": f"GET {pname}, {vname}", "method": "GET", "path": path, "headers": headers,
                          "query": query})  # fmt: skip
        for method in ("HEAD", "OPTIONS", "POST", "PUT", "DELETE"):
            if method == "DELETE" and pname in ("study", "series"):
                continue  # would delete the study the other cases read
            cases.append({"name": f"{method} {pname}", "method": method, "path": path, "headers": std, "query": ""})
    cases.append({"name": "OPTIONS preflight", "method": "OPTIONS", "path": paths["study"], "query": "",
                  "headers": [("origin", ORIGIN), ("access-control-request-method", "GET")]})  # fmt: skip
    return cases


def _http(trees: list[Path], env: dict[str, str], token: str, reads: int) -> None:
    """p50 / p95 of study reads over HTTP: one uvicorn per tree on the same database, one client
    alternating request by request between them (the order rotating), so load swings hit all alike."""
    servers: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for tree in trees:
            port = live.free_port()
            argv = [sys.executable, "-m", "uvicorn", "prizmed.asgi:application", "--host", "127.0.0.1", "--port",
                    str(port), "--lifespan", "off", "--no-access-log", "--http",
                    "core.http_limits:LimitedHttpToolsProtocol"]  # fmt: skip
            proc = subprocess.Popen(argv, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stderr=subprocess.DEVNULL)
            servers.append((proc, f"http://127.0.0.1:{port}"))
            _wait_healthy(servers[-1][1])
        clients = [httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}) for _, url in servers]
        samples: list[list[float]] = [[] for _ in trees]
        cpu_before = [common.cpu_seconds(proc.pid) for proc, _ in servers]
        for n in range(reads + 50):
            for i in [(n + k) % len(trees) for k in range(len(trees))]:
                started = time.perf_counter()
                response = clients[i].get(f"/api/v2/studies/{STUDY_UID}")
                elapsed = time.perf_counter() - started
                assert response.status_code == 200, response.text
                if n >= 50:
                    samples[i].append(elapsed)
        cpu = [
            (common.cpu_seconds(p.pid) - c) / (reads + 50) * 1000 for (p, _), c in zip(servers, cpu_before, strict=True)
        ]
        for tree, taken, server_cpu in zip(trees, samples, cpu, strict=True):
            p50, p95 = common.percentiles(taken)
            print(f"HTTP, {tree.name}: study read p50 {p50:.2f} ms, p95 {p95:.2f} ms ({reads} reads); "
                  f"server CPU {server_cpu:.2f} ms a read")  # fmt: skip
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(15)


def _wait_healthy(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _compare_answers(args: argparse.Namespace, trees: list[Path], env: dict[str, str], arg: dict[str, object]) -> None:
    got = [json.loads(common.run_in_tree(tree, env, CHILD, "answers", json.dumps(arg))) for tree in trees]
    for a in got[0]:
        if args.show and a["case"].startswith(args.show):
            print(f"{a['case']}: {a['status']} {a['headers']}\n    {a['body'][:400]}")
    differing = 0
    for answers in zip(*got, strict=True):
        if any(a != answers[0] for a in answers[1:]):
            differing += 1
            print(f"--- {answers[0]['case']}")
            if args.brief:
                continue
            for tree, a in zip(trees, answers, strict=True):
                print(f"  {tree.name}: {a['status']} {a['headers']}\n    {a['body'][:300]}")
    print(f"{len(got[0])} requests, {differing} answered differently")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_checkout_options(parser)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--http", type=int, default=0, help="study reads over HTTP per tree (uvicorn each)")
    parser.add_argument("--compare-answers", action="store_true")
    parser.add_argument("--brief", action="store_true", help="with --compare-answers: name the differing cases only")
    parser.add_argument("--show", default="", help="with --compare-answers: print the answers whose case starts so")
    args = parser.parse_args()

    trees = [Path(t).resolve() for t in args.trees.split(",")]
    s = common.setup(services=args.services, pg_admin_url=args.pg_admin_url, redis_url=args.redis_url)
    env = {**s.env, "CORS_ALLOWED_ORIGINS": ORIGIN, "PRIZMED_USAGE_FLUSH_SECONDS": "3600"}
    keys = json.loads(common.run_in_tree(trees[-1], env, SEED, STUDY_UID).strip().splitlines()[-1])
    arg = {"token": keys["bench"], "uid": STUDY_UID, "n": args.requests}
    if args.profile:
        print(common.run_in_tree(trees[-1], env, CHILD, "profile", json.dumps(arg)))
        return
    if args.http:
        _http(trees, env, keys["bench"], args.http)
        return
    if args.compare_answers:
        _compare_answers(args, trees, env, {**arg, "cases": _cases(keys), "rid": REQUEST_ID})
        return
    print(f"in-process, {'PostgreSQL + Redis' if args.services else 'embedded (SQLite)'}, "
          f"{args.requests} requests a row; CPU ms per request (wall ms)")  # fmt: skip
    for round_ in range(args.rounds):
        for tree in trees:
            figures = json.loads(common.run_in_tree(tree, env, CHILD, "time", json.dumps(arg)).strip().splitlines()[-1])
            text = ", ".join(f"{row} {cpu:.3f} ({wall:.3f})" for row, (cpu, wall) in figures.items())
            print(f"round {round_ + 1}, {tree.name}: {text}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
