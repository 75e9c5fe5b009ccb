"""The CPU one QIDO-RS search costs, in process (issue 11): requests driven straight into the
ASGI application, no server and no client, so the figure is the application's own CPU.

    .venv/bin/python -m bench.qido_cost [--services] [--requests 300] [--rounds 3]
                                        [--trees /path/of/base,.] [--profile ROW]

One migrated database (SQLite in a temp dir, or with ``--services`` a fresh PostgreSQL database
and Redis db 11, as production runs) holds 300 one-instance studies of a Bench-plan key, as
bench.dicomweb stores them (PatientID QIDOnnnn, PatientName Famnnnn^Given, one day apart). Each
tree of ``--trees`` (a checkout: "." is this one, another typically a detached worktree of the
base commit) runs in a process of its own, the trees alternated ``--rounds`` times; each process
answers ``--requests`` of every row (after 50 warm-up ones, answers checked equal across trees)
and prints the CPU time (``time.process_time``) per request in ms. Rows: the QIDO-RS requests
of bench.dicomweb (by PatientID, by PatientName prefix, by a month of StudyDate), the same by
PatientID with includefield=all and limit/offset, a series and an instances search, the series
of a 200-instance study and the first instances of one of its series (a viewer opening it),
``search()`` alone for the PatientID query, and a study summary read for scale.
``--profile ROW`` prints a cProfile of that row instead (this tree only).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from pathlib import Path

from bench import common

STUDIES = 300

CHILD = r"""
import asyncio, cProfile, hashlib, json, os, pstats, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
mode, arg = sys.argv[1], json.loads(sys.argv[2])
from prizmed.asgi import application

def scope(path, query=""):
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
            "query_string": query.encode(), "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
            "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {arg['token']}".encode())]}

async def call(s):
    sent = []
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}
    async def send(message):
        sent.append(message)
    await application(dict(s), receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 200, (start, body)
    return body

D = "/api/v2/dicomweb"
rows = {
    "QIDO by PatientID": (D + "/studies", "PatientID=QIDO0123"),
    "QIDO by PatientName=Fam01*": (D + "/studies", "PatientName=Fam01*"),
    "QIDO by StudyDate month": (D + "/studies", "StudyDate=20200301-20200331"),
    "QIDO by PatientID, includefield=all": (D + "/studies", "PatientID=QIDO0123&includefield=all"),
    "QIDO studies limit=10&offset=20": (D + "/studies", "limit=10&offset=20"),
    "QIDO series by Modality": (D + "/series", "Modality=CT&limit=20"),
    "QIDO instances of a study": (D + f"/studies/{arg['uid']}/instances", ""),
    "QIDO series of a 200-instance study": (D + f"/studies/{arg['big']}/series", ""),
    "QIDO instances of a 100-instance series, limit=10": (D + f"/studies/{arg['big']}/series/{arg['big']}.1/instances",
                                                          "limit=10"),
    "study summary read": (f"/api/v2/studies/{arg['uid']}", ""),
}

def search_alone():
    # search() with what the handler gives it, without the ASGI request around it.
    from accounts.models import Organization
    from dicomweb.attributes import Level
    from dicomweb.qido import query_parse
    from dicomweb.search import Scope, search
    organization = Organization.objects.get(slug="bench")
    query = query_parse([("PatientID", "QIDO0123")], level=Level.STUDY)
    return lambda: search(scope=Scope(organization), query=query, base="http://127.0.0.1:8000")

async def timed(n):
    out, digests = {}, {}
    for name, (path, query) in rows.items():
        s = scope(path, query)
        for _ in range(50):
            body = await call(s)
        digests[name] = hashlib.sha256(body).hexdigest()
        cpu = time.process_time()
        for _ in range(n):
            await call(s)
        out[name] = (time.process_time() - cpu) / n * 1000
    return out, digests

def timed_search(n):
    one = search_alone()
    for _ in range(50):
        one()
    cpu = time.process_time()
    for _ in range(n):
        one()
    return (time.process_time() - cpu) / n * 1000

if mode == "time":
    out, digests = asyncio.run(timed(arg["n"]))
    out["search() alone, by PatientID"] = timed_search(arg["n"])
    print(json.dumps({"cpu": out, "digests": digests}))
else:
    prof = cProfile.Profile(time.process_time)
    if mode == "search":
        one = search_alone()
        for _ in range(50):
            one()
        prof.enable()
        for _ in range(arg["n"]):
            one()
        prof.disable()
    else:
        path, query = rows[mode]
        async def profiled():
            s = scope(path, query)
            for _ in range(50):
                await call(s)
            prof.enable()
            for _ in range(arg["n"]):
                await call(s)
            prof.disable()
        asyncio.run(profiled())
    pstats.Stats(prof).sort_stats("tottime").print_stats(40)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(60)
"""

SEED = r"""
import os, sys, json, datetime
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
import django
django.setup()
from django.db import transaction
from accounts.models import Plan
from accounts.services import key_issue, organization_ensure
from studies.models import Instance, Patient, Series, Study
count = int(sys.argv[1])
Plan.objects.create(name="Bench", slug="bench", requests_per_minute=10**9)
bench = organization_ensure(slug="bench", plan_slug="bench", name="Bench")
token = key_issue(organization=bench, name="bench")[1]
first = datetime.date(2020, 1, 1)
with transaction.atomic():
    patients = Patient.objects.bulk_create(
        Patient(organization=bench, patient_id=f"QIDO{i:04d}", name=f"Fam{i:04d}^Given",
                birth_date=datetime.date(1970, 1, 1) + datetime.timedelta(days=i), sex="FM"[i % 2])
        for i in range(count))
    studies = Study.objects.bulk_create(
        Study(organization=bench, patient=p, study_uid=f"1.2.826.0.1.3680043.10.511.{i}",
              study_date=first + datetime.timedelta(days=i), study_time=datetime.time(10, i % 60, 5),
              accession_number=f"ACC{i:04d}", description=f"CT chest {i}", referring_physician="Who^Doctor",
              modalities=["CT"], series_count=1, instance_count=1, bytes=1000)
        for i, p in enumerate(patients))
    series = Series.objects.bulk_create(
        Series(study=s, series_uid=f"{s.study_uid}.1", number=1, modality="CT", description="Axial",
               body_part="CHEST", instance_count=1, bytes=1000)
        for s in studies)
    metadata = json.dumps({"00080070": {"vr": "LO", "Value": ["Bench"]}, "00180050": {"vr": "DS", "Value": [1.25]}})
    Instance.objects.bulk_create(
        Instance(organization=bench, series=e, sop_uid=f"{e.series_uid}.1", sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                 transfer_syntax_uid="1.2.840.10008.1.2.1", number=1, object_key=f"k/{e.pk}", size=1000,
                 sha256="0" * 64, rows=512, columns=512, bits_allocated=16, number_of_frames=1, metadata=metadata)
        for e in series)
    # One study of 2 series of 100 instances, as a viewer opens it (series, then a series' instances).
    big = Study.objects.create(organization=bench, patient=patients[0], study_uid="1.2.826.0.1.3680043.10.511.9999",
                               study_date=first, modalities=["CT"], series_count=2, instance_count=200)
    for k in (1, 2):
        e = Series.objects.create(study=big, series_uid=f"{big.study_uid}.{k}", number=k, modality="CT",
                                  instance_count=100)
        Instance.objects.bulk_create(
            Instance(organization=bench, series=e, sop_uid=f"{e.series_uid}.{m}", number=m, sha256="0" * 64,
                     sop_class_uid="1.2.840.10008.5.1.4.1.1.2", transfer_syntax_uid="1.2.840.10008.1.2.1",
                     object_key=f"k/{e.pk}/{m}", size=1000, rows=512, columns=512, bits_allocated=16,
                     number_of_frames=1, metadata=metadata)
            for m in range(1, 101))
print(json.dumps({"token": token, "uid": studies[7].study_uid, "big": big.study_uid}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_checkout_options(parser)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--profile", default="", help="a row's name, or 'search': its cProfile (this tree)")
    args = parser.parse_args()

    trees = [Path(t).resolve() for t in args.trees.split(",")]
    s = common.setup(services=args.services, pg_admin_url=args.pg_admin_url, redis_url=args.redis_url)
    env = {**s.env, "PRIZMED_USAGE_FLUSH_SECONDS": "3600"}
    arg = json.loads(common.run_in_tree(trees[-1], env, SEED, str(STUDIES)).strip().splitlines()[-1])
    arg["n"] = args.requests
    if args.profile:
        print(common.run_in_tree(trees[-1], env, CHILD, args.profile, json.dumps(arg)))
        return
    print(f"in-process, {'PostgreSQL + Redis' if args.services else 'embedded (SQLite)'}, {STUDIES} studies, "
          f"{args.requests} requests a row; CPU ms per request")  # fmt: skip
    answers: dict[str, str] = {}
    for round_ in range(args.rounds):
        for tree in trees:
            got = json.loads(common.run_in_tree(tree, env, CHILD, "time", json.dumps(arg)).strip().splitlines()[-1])
            digest = hashlib.sha256(json.dumps(got["digests"], sort_keys=True).encode()).hexdigest()[:12]
            if answers.setdefault("digest", digest) != digest:
                print(f"  {tree.name} answered differently: {got['digests']}")
            text = ", ".join(f"{row} {cpu:.3f}" for row, cpu in got["cpu"].items())
            print(f"round {round_ + 1}, {tree.name} (answers {digest}): {text}", flush=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
