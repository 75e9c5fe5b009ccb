"""Helpers of the ingest tests: raw HTTP for what httpx will not send, and storage inspection."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from accounts.models import Organization, Plan
from studies.models import Stream, Upload

BOUNDARY = "prizmed-test-boundary"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_header(data: bytes) -> str:
    return f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"


def objects_dir(child_env: dict[str, str]) -> Path:
    return Path(child_env["PRIZMED_DATA_DIR"]) / "objects"


def stored(child_env: dict[str, str], prefix: str) -> list[Path]:
    base = objects_dir(child_env) / prefix
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def partials(child_env: dict[str, str]) -> list[Path]:
    base = objects_dir(child_env) / ".partial"
    return sorted(base.iterdir()) if base.exists() else []


def wait_for(condition: Callable[[], object], timeout: float = 15) -> None:
    """Bounded polling for what the server finishes after the client has gone."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def nothing_left(child_env: dict[str, str], org: Organization) -> bool:
    """No object, partial file, upload or stream of the organization anywhere."""
    return (
        not stored(child_env, f"uploads/{org.pk}")
        and not stored(child_env, f"streams/{org.pk}")
        and not partials(child_env)
        and not Upload.objects.filter(organization=org).exists()
        and not Stream.objects.filter(organization=org).exists()
    )


def assert_nothing_left(child_env: dict[str, str], org: Organization) -> None:
    wait_for(lambda: nothing_left(child_env, org))


def set_plan(org: Organization, **limits: int | None) -> None:
    """Give the organization a plan of its own with these limits (plans are data)."""
    plan = Plan.objects.create(name=f"test-{org.slug}", slug=f"test-{org.slug}", **limits)
    org.plan = plan
    org.save(update_fields=["plan"])


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, object]:
        result: dict[str, object] = json.loads(self.body)
        return result


class RawRequest:
    """An HTTP/1.1 request written by hand: lying Content-Lengths, bodies cut mid-way."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str]) -> None:
        url = urlsplit(base_url)
        self.sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=30)
        lines = [f"POST {url.path}{path} HTTP/1.1", f"Host: {url.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        self.sock.close()

    def response(self) -> RawResponse:
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += self._recv()
        head, _, body = buf.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            body += self._recv()
        self.close()
        return RawResponse(int(status_line.split()[1]), headers, body[:length])

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data


def pieces(data: bytes, size: int = 256 * 1024) -> Iterator[bytes]:
    """A generator body: httpx sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def post(api: httpx.Client, body: object, headers: dict[str, str]) -> httpx.Response:
    return api.post("/dicom/stream", content=body, headers=headers)  # type: ignore[arg-type]
