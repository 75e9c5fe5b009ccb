"""The server's CPU per WADO-RS whole-study retrieval (issue 11): one uvicorn per checkout on
one database and one store, curl as the client, the checkouts alternated.

    .venv/bin/python -m bench.wado_cost [--services] [--trees /path/of/base,.] [--requests 20]
                                        [--rounds 2] [--profile py-spy.txt]

The studies are bench/dicomweb.py's: MR 700 × ~77 kB (7 series) and CT 200 × 0.5 MB, stored
once through STOW-RS (the first tree's server). Each round reads each study from each tree's
server: 3 untimed reads, then ``--requests`` timed ones; printed per tree, study and round: the
server process's CPU (user + system, every thread, from /proc) per study in ms and per instance
in µs, and curl's median MB/s. ``--profile FILE`` runs py-spy (``record --format raw``: folded
stacks, idle threads left out) on the last tree's server over one more round of MR reads.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from bench import common
from bench.dicomweb import MR_PIXELS, WADO_ACCEPT, Study, make_study, stow
from bench.dicomweb import Target as DicomwebTarget
from bench.read_path import _wait_healthy
from tests.support import live

# The in-process mode's child: the whole-study GET driven straight into the ASGI application of
# one tree (no uvicorn, no socket), CPU per request (every thread) by time.process_time.
CHILD = r"""
import asyncio, cProfile, json, os, pstats, sys, threading, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
arg = json.loads(sys.argv[1])
from prizmed.asgi import application

async def call(path):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {arg['token']}".encode()),
                         (b"accept", arg["accept"].encode())],
             "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000)}
    first, size = True, 0
    async def receive():
        nonlocal first
        if first:
            first = False
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()
    async def send(message):
        nonlocal size
        size += len(message.get("body", b""))
    await application(scope, receive, send)
    return size

async def main():
    out = {}
    for name, (uid, expected) in arg["studies"].items():
        path = f"/api/v2/dicomweb/studies/{uid}"
        for _ in range(3):
            assert await call(path) >= expected
        if arg["profile"]:
            prof = cProfile.Profile(time.process_time)
            prof.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for _ in range(arg["n"]):
            await call(path)
        out[name] = ((time.process_time() - cpu) / arg["n"] * 1000, (time.perf_counter() - wall) / arg["n"] * 1000)
        if arg["profile"]:
            prof.disable()
            stats = pstats.Stats(prof)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumulative").print_stats(40)
    print(json.dumps(out))

asyncio.run(main())
"""


def _server(tree: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = live.free_port()
    argv = [sys.executable, "-m", "uvicorn", "prizmed.asgi:application", "--host", "127.0.0.1", "--port", str(port),
            "--lifespan", "off", "--no-access-log", "--http", "core.http_limits:LimitedHttpToolsProtocol"]  # fmt: skip
    proc = subprocess.Popen(argv, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    _wait_healthy(url)
    return proc, url


def _curl(url: str, token: str, expected: int) -> float:
    """One whole-study GET by curl (body to /dev/null); MB/s."""
    argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}",
            "-H", f"Accept: {WADO_ACCEPT}", "-H", f"Authorization: Bearer {token}", url]  # fmt: skip
    status, size, seconds = subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()
    if status != "200" or int(size) < expected:
        raise RuntimeError(f"GET {url}: {status}, {size} bytes for {expected} stored")
    return int(size) / 1e6 / float(seconds)


def _measure(pid: int, url: str, token: str, study: Study, n: int) -> tuple[float, float]:
    """CPU ms of the server per study read, and curl's median MB/s, over ``n`` reads."""
    for _ in range(3):
        _curl(url, token, study.bytes)
    before = common.cpu_seconds(pid)
    rates = [_curl(url, token, study.bytes) for _ in range(n)]
    return (common.cpu_seconds(pid) - before) / n * 1000, statistics.median(rates)


def _profile(server: tuple[subprocess.Popen[bytes], str], token: str, study: Study, args: argparse.Namespace) -> None:
    """py-spy's folded stacks of ``server`` over ``--requests`` reads of ``study``, to ``--profile``."""
    proc, url = server
    argv = [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(proc.pid), "--format", "raw",
            "--rate", "1000", "--output", args.profile, "--nonblocking"]  # fmt: skip
    spy = subprocess.Popen(argv)
    time.sleep(1)
    _measure(proc.pid, f"{url}/api/v2/dicomweb/studies/{study.uid}", token, study, args.requests)
    spy.send_signal(2)
    spy.wait(30)


def _hold(
    path: Path, servers: list[tuple[subprocess.Popen[bytes], str]], token: str, studies: dict[str, Study]
) -> None:
    """Keep the servers (for py-spy, perf) until ``path`` is removed; it names their pids, URLs and the studies."""
    lines = [f"{proc.pid} {url}/api/v2/dicomweb/studies/{{}} {token}" for proc, url in servers]
    path.write_text("\n".join([*lines, " ".join(study.uid for study in studies.values())]))
    while path.exists():
        time.sleep(1)


def _in_process(
    args: argparse.Namespace, trees: list[Path], env: dict[str, str], token: str, studies: dict[str, Study]
) -> None:
    arg = {"token": token, "accept": WADO_ACCEPT, "n": args.requests, "profile": bool(args.profile),
           "studies": {name: (study.uid, study.bytes) for name, study in studies.items()}}  # fmt: skip
    for round_ in range(args.rounds):
        for tree in trees:
            out = common.run_in_tree(tree, env, CHILD, json.dumps(arg))
            if args.profile:
                Path(args.profile).write_text(out)
            figures = json.loads(out.strip().splitlines()[-1])
            cells = [f"{name} {cpu:.1f} ms CPU ({cpu * 1000 / len(studies[name].parts):.0f} µs/instance), "
                     f"{wall:.1f} ms wall" for name, (cpu, wall) in figures.items()]  # fmt: skip
            print(f"in process, round {round_ + 1}, {tree.name}: " + "; ".join(cells) +
                  f"; load {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip


def _rounds(
    args: argparse.Namespace,
    trees: list[Path],
    servers: list[tuple[subprocess.Popen[bytes], str]],
    token: str,
    studies: dict[str, Study],
) -> None:
    """Each round reads each study from each tree's server and prints the server's CPU per read."""
    for round_ in range(args.rounds):
        for tree, (proc, url) in zip(trees, servers, strict=True):
            cells = []
            for name, study in studies.items():
                cpu, rate = _measure(proc.pid, f"{url}/api/v2/dicomweb/studies/{study.uid}", token, study,
                                     args.requests)  # fmt: skip
                per = cpu * 1000 / len(study.parts)
                cells.append(f"{name} {cpu:.1f} ms ({per:.0f} µs/instance, {rate:.0f} MB/s)")
            print(f"round {round_ + 1}, {tree.name}: " + "; ".join(cells) + f"; load {os.getloadavg()[0]:.2f}",
                  flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_checkout_options(parser)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", default="", help="py-spy folded stacks of the last tree, MR reads")
    parser.add_argument("--in-process", action="store_true", help="the ASGI app driven in process, no HTTP")
    parser.add_argument("--hold", default="", help="after the rounds, keep the servers until this file is removed")
    args = parser.parse_args()

    trees = [Path(t).resolve() for t in args.trees.split(",")]
    s = common.setup(services=args.services, pg_admin_url=args.pg_admin_url, redis_url=args.redis_url)
    token = s.issue_key("bench")
    studies = {
        "MR": make_study("MR", 7, 100, MR_PIXELS, "WADO-MR"),
        "CT": make_study("CT", 1, 200, 512 * 1024, "WADO-CT"),
    }
    servers = [_server(tree, s.env) for tree in trees[:1] if args.in_process] or [_server(t, s.env) for t in trees]
    # With --services the STOW-RS bodies are indexed by a worker, as in production.
    worker = live.worker_start(s.env, s.data_dir) if args.services else None
    try:
        target = DicomwebTarget("PrizMed", servers[0][1] + "/api/v2/dicomweb", {"Authorization": f"Bearer {token}"})
        with httpx.Client(base_url=target.base, headers=target.headers, timeout=300) as client:
            for study in studies.values():
                if not stow(target, client, study.parts):
                    time.sleep(5)  # a 202: indexing outlasted the bound
        print(f"load before: {os.getloadavg()[0]:.2f}; {args.requests} timed reads per cell", flush=True)
        if args.in_process:
            servers[0][0].terminate()
            servers[0][0].wait(15)
            _in_process(args, trees, s.env, token, studies)
            return
        _rounds(args, trees, servers, token, studies)
        if args.profile:
            _profile(servers[-1], token, studies["MR"], args)
        if args.hold:
            _hold(Path(args.hold), servers, token, studies)
    finally:
        for proc, _ in servers:
            proc.terminate()
            proc.wait(15)
        if worker is not None:
            worker.stop()


if __name__ == "__main__":
    main()
