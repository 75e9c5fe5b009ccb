"""Connection-flood probes (issue 10 item 6): idle, slow-header and slow-body connections against
one server process, while a normal client measures its latency.

    .venv/bin/python -m bench.limits [--connections 300] [--requests 300] [--seconds 12]

Embedded mode (SQLite), one uvicorn process with the limits of core/http_limits.py as
configured (defaults unless HTTP_* variables are set). For each attack the flood is opened,
then the normal client sends `--requests` authenticated GETs; the table gives its p50/p95,
how many of its requests failed, how many attack connections the server still held at the end
of the window, and the server's RSS. The client, the flood and the server share 2 cores.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time

import httpx

from bench import common

SCENARIOS = ("none", "idle", "slow-header", "slow-body")


def flood(kind: str, port: int, count: int, key: str, stop: threading.Event) -> list[socket.socket]:
    """Open ``count`` attack connections of ``kind``; a thread trickles bytes until ``stop``."""
    socks: list[socket.socket] = []
    for _ in range(count if kind != "none" else 0):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        except OSError:
            break
        if kind == "slow-header":
            sock.sendall(b"GET /api/v2/organization HTTP/1.1\r\nHost: x\r\n")
        elif kind == "slow-body":
            head = ("POST /api/v2/dicom/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key
                    + "\r\nContent-Type: application/dicom\r\nContent-Length: 100000000\r\n\r\n")  # fmt: skip
            sock.sendall(head.encode() + b"DICM")
        socks.append(sock)

    def trickle() -> None:
        while not stop.wait(1.0):
            for sock in socks:
                try:
                    sock.send(b"X" if kind == "slow-header" else (b"\0" if kind == "slow-body" else b""))
                except OSError:
                    pass

    threading.Thread(target=trickle, daemon=True).start()
    return socks


def still_open(socks: list[socket.socket]) -> int:
    """Attack connections the server still holds: no answer (408/503) and no EOF from it."""
    alive = 0
    for sock in socks:
        sock.setblocking(False)
        try:
            sock.recv(65536)  # b"" (EOF) or the server's 408/503: it has let go
        except BlockingIOError:
            alive += 1  # nothing from the server yet: still held
        except OSError:
            pass  # reset: let go
    return alive


def measure(url: str, key: str, total: int) -> tuple[float, float, int]:
    latencies: list[float] = []
    failed = 0
    with httpx.Client(timeout=30) as client:
        for _ in range(total):
            started = time.perf_counter()
            try:
                ok = client.get(url, headers={"Authorization": f"Bearer {key}"}).status_code == 200
            except httpx.TransportError:
                ok = False
            latencies.append(time.perf_counter() - started)
            failed += not ok
    p50, p95 = common.percentiles(latencies)
    return p50, p95, failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=300)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=12.0, help="attack window before counting survivors")
    args = parser.parse_args()
    setup = common.setup(services=False)
    key = setup.issue_key("bench-limits")
    server = common.start_server(setup)
    assert server.proc is not None
    print(f"| attack | connections | client p50 ms | client p95 ms | client failures | held after {args.seconds:g} s "
          "| server RSS MB |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    try:
        for kind in SCENARIOS:
            stop = threading.Event()
            started = time.monotonic()
            socks = flood(kind, server.port, args.connections, key, stop)
            p50, p95, failed = measure(f"{server.url}/api/v2/organization", key, args.requests)
            time.sleep(max(0.0, args.seconds - (time.monotonic() - started)))
            held = still_open(socks)
            rss = common.rss_mb(server.proc.pid)
            stop.set()
            for sock in socks:
                sock.close()
            print(f"| {kind} | {len(socks)} | {p50:.1f} | {p95:.1f} | {failed} | {held} | {rss:.0f} |")
            time.sleep(1)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
