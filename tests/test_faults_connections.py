"""Issue 10 items 5 and 6: no connection can hold the server. Raw sockets against a live uvicorn
with small bounds: an idle or slow head is answered 408 and closed, a huge head or too many
headers 431, connections past the per-process cap 503 at once; a body that stalls is ended
(408) and its upload dropped, so the retry with the same request id is accepted. An upload
left `receiving` by a process that lost its database is taken over by the retry.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from studies.models import Upload, UploadState
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import sha, stored
from tests.support.world import World

pytestmark = [pytest.mark.services, pytest.mark.faults]
LIMITS = {
    "HTTP_HEAD_TIMEOUT_SECONDS": "2",
    "HTTP_BODY_IDLE_TIMEOUT_SECONDS": "2",
    "HTTP_MAX_HEAD_BYTES": "8192",
    "HTTP_MAX_HEADERS": "20",
    "HTTP_MAX_CONNECTIONS": "20",
}


@pytest.fixture(scope="module")
def bounded(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    server = live.server({**child_env, **LIMITS}, run_dir)
    yield server
    server.stop()


def raw(server: live.Server, data: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=60)
    if data:
        sock.sendall(data)
    return sock


def answer(sock: socket.socket) -> tuple[int, bytes]:
    """Read until the server closes: the status and the whole answer (a bounded wait)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    sock.close()
    assert data, "the server closed without an answer"
    return int(data.split(b" ", 2)[1]), data


def test_an_idle_connection_is_closed_with_408(bounded: live.Server) -> None:
    status, data = answer(raw(bounded))
    assert status == 408 and b"connection: close" in data.lower()


def test_a_head_that_trickles_is_closed_with_408(bounded: live.Server) -> None:
    sock = raw(bounded, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: a")
    status, _ = answer(sock)
    assert status == 408


def test_a_huge_head_is_431(bounded: live.Server) -> None:
    sock = raw(bounded, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert answer(sock)[0] == 431


def test_too_many_headers_is_431(bounded: live.Server) -> None:
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
    sock = raw(bounded, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n")
    assert answer(sock)[0] == 431


def test_connections_past_the_cap_are_503_at_once(bounded: live.Server) -> None:
    held = [raw(bounded) for _ in range(int(LIMITS["HTTP_MAX_CONNECTIONS"]))]
    try:
        status, data = answer(raw(bounded, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"))
        assert status == 503 and b"retry-after" in data.lower()
    finally:
        for sock in held:
            sock.close()
    assert httpx.get(f"{bounded.url}/healthz").status_code == 200


def test_a_stalled_body_is_ended_and_its_request_id_freed(
    bounded: live.Server, world: World, child_env: dict[str, str]
) -> None:
    request_id = str(uuid.uuid4())
    instance = make_instance(pixel_bytes=200_000)
    head = [
        "POST /api/v2/dicom/stream HTTP/1.1",
        "Host: x",
        *(f"{k}: {v}" for k, v in world.bob.headers.items()),
        "Content-Type: application/dicom",
        f"X-Request-Id: {request_id}",
        f"Content-Length: {len(instance)}",
    ]
    sock = raw(bounded, ("\r\n".join(head) + "\r\n\r\n").encode() + instance[:65536])

    status, data = answer(sock)  # then silence: the server ends it

    assert status == 408 and b"/problems/body-timeout" in data
    assert not Upload.objects.filter(pk=request_id).exists()
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    retry = httpx.post(f"{bounded.url}/api/v2/dicom/stream", content=instance, headers=headers)
    assert retry.status_code == 202, retry.text
    assert retry.json()["sha256"] == sha(instance)


def test_a_stalled_websocket_upload_is_ended_and_its_request_id_freed(bounded: live.Server, world: World) -> None:
    request_id = str(uuid.uuid4())
    instance = make_instance()
    url = f"ws://127.0.0.1:{bounded.port}/ws/v2/dicom/stream"
    with connect(url, additional_headers=world.bob.headers) as conn:
        conn.send(json.dumps({"content_type": "application/dicom", "request_id": request_id}))
        conn.send(instance[:1000])
        assert json.loads(conn.recv())["type"] == "ack"
        error = json.loads(conn.recv())  # then silence: the server ends it
        with pytest.raises(ConnectionClosed) as closed:
            conn.recv()
    assert error["type"] == "error" and error["problem"]["type"] == "/problems/body-timeout"
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408
    assert not Upload.objects.filter(pk=request_id).exists()

    with connect(url, additional_headers=world.bob.headers) as conn:
        conn.send(json.dumps({"content_type": "application/dicom", "request_id": request_id}))
        conn.send(instance)
        assert json.loads(conn.recv())["type"] == "ack"
        conn.send(json.dumps({"type": "end"}))
        received = json.loads(conn.recv())
    assert received["type"] == "received" and received["sha256"] == sha(instance)


def test_an_upload_left_receiving_by_a_dead_process_is_taken_over_by_the_retry(
    api: httpx.Client, world: World, child_env: dict[str, str]
) -> None:
    request_id = str(uuid.uuid4())
    Upload.objects.create(id=request_id, organization=world.bob.org, content_type="application/dicom")
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    instance = make_instance()
    alive = api.post("/dicom/stream", content=instance, headers=headers)
    assert alive.status_code == 409 and 0 < int(alive.headers["retry-after"]) <= 90  # when it would be dead

    Upload.objects.filter(pk=request_id).update(updated=timezone.now() - timedelta(hours=1))  # no sign of life
    retry = api.post("/dicom/stream", content=instance, headers=headers)

    assert retry.status_code == 202, retry.text
    assert Upload.objects.get(pk=request_id).state in (UploadState.QUEUED, UploadState.INDEXING, UploadState.DONE)
    (path,) = stored(child_env, f"uploads/{world.bob.org.pk}/{request_id}")
    assert path.read_bytes() == instance
