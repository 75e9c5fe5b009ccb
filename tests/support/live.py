"""Real processes for integration tests and benchmarks: uvicorn servers and Celery workers.

Each process gets the environment of the database the tests use, so what a test writes through
the ORM (committed) is what the server sees, and vice versa.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the repository


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def database_url(db: dict[str, object]) -> str:
    """The URL of a Django DATABASES entry (pytest-django has pointed NAME at the test db)."""
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user, host, port = db.get("USER") or "postgres", db.get("HOST") or "127.0.0.1", db.get("PORT") or 5432
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


@dataclass
class Process:
    """A child process with its own log file, stopped with SIGTERM (or killed) by the test."""

    argv: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass
class Server(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited at start-up:\n{self.log()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not answer within 30 s:\n{self.log()[-3000:]}")


def server(env: dict[str, str], log_dir: Path, port: int | None = None, python: str = sys.executable) -> Server:
    """A uvicorn process serving PrizMed, started and answering; ``python``: whose interpreter."""
    port = port or free_port()
    argv = [
        python, "-m", "uvicorn", "prizmed.asgi:application",
        "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off", "--no-access-log",
        "--ws-max-size", "8388608", "--ws-max-queue", "4",
    ]  # fmt: skip
    srv = Server(argv=argv, env=env, log_path=log_dir / f"uvicorn-{port}.log", port=port)
    srv.start()
    return srv


def child_env(*, database_url: str, data_dir: Path, clock_file: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE",)}
    env.update(
        DATABASE_URL=database_url,
        PRIZMED_DATA_DIR=str(data_dir),
        PRIZMED_CLOCK_FILE=str(clock_file),
        SECRET_KEY="test-secret-key-for-child-processes-0123456789abcdefghij",
        DEBUG="0",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def worker_start(env: dict[str, str], log_dir: Path, python: str = sys.executable, **extra_env: str) -> Process:
    """A real `celery worker` on this run's queue (PRIZMED_NAMESPACE), started and ready;
    ``python``: the interpreter (of a virtualenv) it runs on."""
    argv = [python, "-m", "celery", "-A", "prizmed", "worker", "-l", "INFO", "--concurrency", "1",
            "-Q", env["PRIZMED_NAMESPACE"], "--without-mingle", "--without-gossip", "--without-heartbeat",
            "-n", f"w{free_port()}@%h"]  # fmt: skip
    proc = Process(argv=argv, env={**env, **extra_env}, log_path=log_dir / f"worker-{free_port()}.log")
    proc.start()
    deadline = time.monotonic() + 30
    while " ready." not in proc.log():
        assert proc.proc is not None
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"worker did not start:\n{proc.log()[-3000:]}")
        time.sleep(0.1)
    return proc
