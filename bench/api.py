"""Foundation benchmark: what authentication, rate limiting and the ASGI layers cost a request.

    .venv/bin/python -m bench.api [--requests 3000] [--concurrency 8]

Compares /healthz (no key, no DRF) with GET /api/v2/organization (key lookup, rate-limit
count, DRF view) on one uvicorn process, embedded (SQLite, in-process counters) and with
PostgreSQL + Redis. The client runs on the same 2 cores, so absolute rates are a floor.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench import common


def run(url: str, headers: dict[str, str], total: int, concurrency: int) -> tuple[float, float, float]:
    """Requests/s and latency p50/p95 (ms) of `total` GETs from `concurrency` threads."""
    local = threading.local()
    latencies: list[float] = []

    def one(_: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(total)))
    rate = total / (time.perf_counter() - started)
    p50, p95 = common.percentiles(latencies)
    return rate, p50, p95


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    print("| mode | route | requests/s | p50 ms | p95 ms | server CPU per request |")
    print("|---|---|---|---|---|---|")
    for services in (False, True):
        s = common.setup(services=services)
        key = s.issue_key("bench", plan="professional", role="standard")
        # A limit high enough never to trip, so every request pays for the counter.
        s.manage("shell", "-c", "from accounts.models import Plan; Plan.objects.update(requests_per_minute=10**9)")
        server = common.start_server(s)
        try:
            mode = "PostgreSQL + Redis" if services else "embedded"
            auth = {"Authorization": f"Bearer {key}"}
            for route, headers in (("/healthz", {}), ("/api/v2/organization", auth)):
                run(server.url + route, headers, 200, args.concurrency)  # warm-up
                assert server.proc is not None
                cpu = common.cpu_seconds(server.proc.pid)
                rate, p50, p95 = run(server.url + route, headers, args.requests, args.concurrency)
                per_request = (common.cpu_seconds(server.proc.pid) - cpu) / args.requests * 1000
                print(f"| {mode} | `{route}` | {rate:,.0f} | {p50:.1f} | {p95:.1f} | {per_request:.2f} ms |")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
