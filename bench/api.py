"""Foundation benchmark: what authentication, rate limiting and the ASGI layers cost a request.

    .venv/bin/python -m bench.api [--requests 3000] [--concurrency 8] [--hot-path-only]

Compares /healthz (no key, no DRF) with GET /api/v2/organization (key lookup, rate-limit
count, DRF view) on one uvicorn process, embedded (SQLite, in-process counters) and with
PostgreSQL + Redis. The client runs on the same 2 cores, so absolute rates are a floor.

Then what the dashboard's counters add to every request, measured in process as CPU time per
call (steadier than the difference of two loaded HTTP runs): the usage counter and the
Prometheus request metrics (issue 16: under 0.1 ms together).
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


HOT_PATH = """
import time
from accounts.usage import usage_count
from core.metrics import HTTP_DURATION, HTTP_REQUESTS, route_label

def per_call_us(one, n=200_000):
    started = time.process_time()
    for _ in range(n):
        one()
    return (time.process_time() - started) / n * 1e6

def metrics():
    route = route_label('/api/v2/studies/1.2.840.1/series', 200)
    HTTP_DURATION.labels(route).observe(0.001)
    HTTP_REQUESTS.labels(route, 'GET', '200').inc()

usage = per_call_us(lambda: usage_count(1, status=200, bytes_in=100, bytes_out=1000))
print(f'| usage counter (accounts/usage.py) | {usage:.2f} µs |')
print(f'| Prometheus request metrics (core/metrics.py) | {per_call_us(metrics):.2f} µs |')
"""


def hot_path() -> None:
    print("\n| per request | server CPU |\n|---|---|")
    print(common.setup(services=False).manage("shell", "-v", "0", "-c", HOT_PATH))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--hot-path-only", action="store_true")
    args = parser.parse_args()
    if args.hot_path_only:
        hot_path()
        return
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
    hot_path()


if __name__ == "__main__":
    main()
