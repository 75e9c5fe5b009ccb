"""A real S3-compatible server for tests: moto's standalone server (`moto[server]`) as its own
process over HTTP, and a TCP relay in front of it that a test can cut, so "the store is down"
is a refused connection, as in production, not a mock."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from studies.objects.s3 import S3Location, S3Storage, s3_client
from tests.support.live import Process

# The fake credentials moto accepts; the standard variables, as production reads them.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
TEST_PART_BYTES = 5 * 1024 * 1024  # S3's minimum, so tests reach multipart with little data


def moto_server(port: int, log_dir: Path) -> Process:
    """Start `python -m moto.server` on 127.0.0.1:``port``; return once it answers."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    proc = Process(argv=argv, env={**os.environ, **AWS_ENV}, log_path=log_dir / f"moto-{port}.log")
    proc.start()
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
            return proc
        except httpx.TransportError:
            assert proc.proc is not None
            if proc.proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"moto server did not start:\n{proc.log()[-3000:]}") from None
            time.sleep(0.1)


def requests_served(moto: Process) -> int:
    """Requests the moto server answered so far: werkzeug logs each as `... [date] "METHOD path ..."`
    (status colours included, so the line is matched by its start)."""
    return moto.log().count('] "')


def client(endpoint: str) -> Any:
    """A client as the server builds one (short timeouts, two tries) for ``endpoint``."""
    os.environ.update(AWS_ENV)
    return s3_client(timeout=3, max_attempts=2, path_style=True, endpoint_url=endpoint)


def bucket_create(endpoint: str, bucket: str) -> None:
    client(endpoint).create_bucket(Bucket=bucket)


def s3_storage(endpoint: str, url: str) -> S3Storage:
    return S3Storage(S3Location.parse(url), client(endpoint), part_bytes=TEST_PART_BYTES)


def multipart_uploads(store: S3Storage) -> list[str]:
    """Keys of the multipart uploads begun and neither completed nor aborted under the store's prefix."""
    found = store.client.list_multipart_uploads(Bucket=store.location.bucket, Prefix=store.location.prefix)
    return [str(u["Key"]) for u in found.get("Uploads", [])]


def server_env(endpoint: str, url: str) -> dict[str, str]:
    """What a uvicorn process or worker needs to use the store at ``url`` behind ``endpoint``."""
    return {
        **AWS_ENV,
        "AWS_ENDPOINT_URL": endpoint,
        "PRIZMED_STORAGE_URL": url,
        "PRIZMED_S3_PART_BYTES": str(TEST_PART_BYTES),
        "PRIZMED_S3_TIMEOUT_SECONDS": "3",
        "PRIZMED_S3_MAX_ATTEMPTS": "2",
    }


class Relay:
    """A TCP relay 127.0.0.1:``port`` -> ``target``; ``cut()`` closes every connection and refuses
    new ones until ``mend()``. ``bytes_up`` and ``bytes_down`` count the bytes relayed to and from the store."""

    def __init__(self, port: int, target: int) -> None:
        self.port = port
        self._target = target
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self.bytes_up = self.bytes_down = 0
        self._listen()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listen(self) -> None:
        listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                near, _ = listener.accept()
            except OSError:
                return  # closed by cut()
            try:
                far = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                near.close()
                continue
            with self._lock:
                self._sockets += [near, far]
            for a, b, upward in ((near, far, True), (far, near, False)):
                threading.Thread(target=self._pipe, args=(a, b, upward), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upward: bool) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
                with self._lock:
                    if upward:
                        self.bytes_up += len(data)
                    else:
                        self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        """The store goes away: open connections drop, new ones are refused."""
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked on it (Linux)
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def mend(self) -> None:
        if self._listener is None:
            self._listen()

    @contextmanager
    def down(self) -> Iterator[None]:
        self.cut()
        try:
            yield
        finally:
            self.mend()
