"""The indexing cost of single-instance uploads, in-process, with a profile (issue 19).

    .venv/bin/python -m bench.index_cost [--uploads 100] [--services] [--backlog] [--one-study] [--profile 25]

Makes N single-instance uploads (rows and objects, as ingest leaves them) in a fresh database
(SQLite, or PostgreSQL with --services) and runs the indexing task of each, in this process
and this thread (what the embedded runner or a worker does). By default each upload is queued
just before its task runs (one client, an indexer keeping up); with --backlog all are queued
first (an indexer behind). Each upload is a study of its own, or with --one-study every
instance goes to one series of one study (bench.compare's one-instance rows).
Prints the CPU per upload of this process (the indexing only; not
ingest, not PostgreSQL's own CPU: see bench.compare), SQL statements per upload, and with
--profile the top functions by cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import time
from typing import Any

from bench import common


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--uploads", type=int, default=100)
    parser.add_argument("--services", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--backlog", action="store_true", help="queue every upload before indexing any")
    parser.add_argument("--one-study", action="store_true", help="every instance in one study and series")
    parser.add_argument("--profile", type=int, default=25, help="functions of the profile to print (0: none)")
    args = parser.parse_args()

    s = common.setup(services=args.services)
    os.environ.update({k: v for k, v in s.env.items() if k != "REDIS_URL"})
    os.environ["CELERY_BROKER_URL"] = ""  # tasks run here: enqueue is replaced below
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
    import django

    django.setup()
    from django.db import close_old_connections, connection

    import studies.index.tasks as index_tasks
    from accounts.services import organization_ensure
    from tests.support.dicomfactory import make_instance
    from tests.support.indexing import stored_upload

    def run_now(task: Any, *task_args: Any) -> None:
        task(*task_args)

    index_tasks.enqueue = run_now  # type: ignore[attr-defined]  # the parts run here, in order
    org = organization_ensure(slug="bench", plan_slug="enterprise")
    from pydicom.uid import generate_uid

    study, series = str(generate_uid()), str(generate_uid())
    instances = [
        make_instance(patient_id="P", study_uid=study, series_uid=series, instance_number=n + 1)
        if args.one_study
        else make_instance(patient_id=f"P{n}")
        for n in range(args.uploads)
    ]
    uploads: list[str] = []

    def queue(n: int) -> str:
        uploads.append(str(stored_upload(org, [instances[n]]).pk))
        return uploads[-1]

    queued = [queue(n) for n in range(args.uploads)] if args.backlog else []
    connection.close()

    counts = {"statements": 0, "on": 0}

    def count(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        counts["statements"] += counts["on"]
        return execute(sql, params, many, context)

    profile = cProfile.Profile()
    started_cpu, started = time.process_time(), time.perf_counter()
    with connection.execute_wrapper(count):
        for n in range(args.uploads):
            if not args.backlog:
                spent = time.process_time(), time.perf_counter()
                queue(n)  # not counted: ingest's part
                started_cpu += time.process_time() - spent[0]
                started += time.perf_counter() - spent[1]
            counts["on"] = 1
            if args.profile:
                profile.enable()
            index_tasks.index_upload(queued[n] if args.backlog else uploads[-1])
            close_old_connections()  # what the task runners do after each task
            if args.profile:
                profile.disable()
            counts["on"] = 0
    cpu, wall = time.process_time() - started_cpu, time.perf_counter() - started
    n = len(uploads)
    backend = "PostgreSQL" if args.services else "SQLite"
    statements = counts["statements"] / n
    print(f"{n} single-instance uploads indexed ({backend}): {cpu / n * 1000:.2f} ms CPU and "
          f"{wall / n * 1000:.2f} ms wall per upload; {statements:.1f} statements per upload")  # fmt: skip
    from studies.models import Upload, UploadState

    done = Upload.objects.filter(pk__in=uploads, state=UploadState.DONE, instances_indexed=1).count()
    print(f"done: {done} of {n}")
    if args.profile:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.profile)
        print(out.getvalue())


if __name__ == "__main__":
    main()
