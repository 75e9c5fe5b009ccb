"""Real processes for the fault-injection tests (issue 10): a private Redis each test starts and
stops (never the machine's), and a server plus Celery worker (with beat) that use it.

Each private Redis listens on a free port of its own. Redis runs without persistence: a restart is an empty
Redis, as a failed-over cache would be, so nothing a test relies on may live only in Redis.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support import live


@dataclass
class PrivateRedis:
    port: int
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.log_dir / f"redis-{self.port}.log").open("ab")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self.answers, what=f"redis on {self.port}")

    def stop(self) -> None:
        """Stop it (SIGTERM, no save) and wait until the port refuses connections."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(15)
        self.proc = None
        wait_until(lambda: not self.answers(), what=f"redis on {self.port} gone")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


def wait_until(condition: Callable[[], object], *, what: str, timeout: float = 60) -> None:
    """Bounded polling for what other processes finish (a bound, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout} s")
        time.sleep(0.1)


def fault_env(child_env: dict[str, str], redis: PrivateRedis, **extra: str) -> dict[str, str]:
    """The test servers' environment, on the private Redis, with a fast outbox sweep."""
    return {
        **child_env,
        "REDIS_URL": redis.url,
        "CELERY_BROKER_URL": redis.url,
        "OUTBOX_SWEEP_SECONDS": "1",
        "OUTBOX_RESEND_AFTER_SECONDS": "1",
        **extra,
    }


def worker_with_beat(env: dict[str, str], log_dir: Path) -> live.Process:
    """A Celery worker that also runs beat (-B): the periodic sweeps of CELERY_BEAT_SCHEDULE."""
    port = live.free_port()
    argv = [sys.executable, "-m", "celery", "-A", "prizmed", "worker", "-B", "-s", str(log_dir / f"beat-{port}"),
            "-l", "INFO", "--concurrency", "1", "-Q", env["PRIZMED_NAMESPACE"], "--without-mingle",
            "--without-gossip", "--without-heartbeat", "-n", f"fw{port}@%h"]  # fmt: skip
    proc = live.Process(argv=argv, env=env, log_path=log_dir / f"worker-{port}.log")
    proc.start()
    wait_until(lambda: " ready." in proc.log() or (proc.proc is not None and proc.proc.poll() is not None),
               what="worker start")  # fmt: skip
    if " ready." not in proc.log():
        raise RuntimeError(f"worker did not start:\n{proc.log()[-3000:]}")
    return proc


class TcpProxy:
    """A TCP forwarder between the servers and PostgreSQL, so a test can make the database
    unreachable for the app alone (``cut``: every connection dropped, new ones refused) and
    bring it back (``restore``), without touching the machine's PostgreSQL."""

    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.target = (host, target_port)
        self.port = live.free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            # shutdown wakes the accept() blocked in the other thread (close alone does not, on Linux).
            try:
                listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
