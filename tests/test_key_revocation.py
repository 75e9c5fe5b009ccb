"""Revocation and expiry end access at once (issue 10 item 10): a key's open SSE stream gets a
last `access-ended` event and ends, its open WebSocket an error frame and close code 4401; the
consumers clean up as for a client that left."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.services import key_revoke
from tests.support import dicomfactory, live
from tests.support.ingest_support import assert_nothing_left
from tests.support.records_support import SseClient, index_study, stream_timeout
from tests.support.world import World, party

SSE = {"Accept": "text/event-stream"}


def read_until_ended(server: live.Server, headers: dict[str, str], before_end: object = None) -> list[str]:
    """Open an SSE stream, run `before_end` once the snapshot is in, and return the events read
    from then until the stream ends; the last must be the ending one."""
    with (
        httpx.Client(base_url=server.url, headers={**headers, **SSE}, timeout=stream_timeout()) as client,
        client.stream("GET", "/api/v2/records/stream") as response,
    ):
        assert response.status_code == 200
        sse = SseClient(response)
        sse.until("snapshot-end")
        if callable(before_end):
            before_end()
        events = []
        while True:
            try:
                events.append(sse.next())
            except EOFError:
                break
    assert events, "the stream ended without saying why"
    last = events[-1]
    assert last.event == "access-ended"
    return [last.json["type"], last.json["status"], *(e.event for e in events[:-1])]


def test_revoking_a_key_ends_its_open_sse_stream(server: live.Server, world: World) -> None:
    index_study(world.bob.org)
    ended = read_until_ended(server, world.bob.headers, before_end=lambda: key_revoke(key=world.bob.key))
    assert ended[:2] == ["/problems/key-revoked", 401]
    # No record event after the revocation (none happened), and the key is refused from now on.
    assert ended[2:] == []
    assert httpx.get(f"{server.url}/api/v2/records/stream", headers=world.bob.headers).status_code == 401


def test_an_expiring_key_ends_its_open_sse_stream(server: live.Server, world: World) -> None:
    short = party(world.bob.org, "short-lived", expires_at=timezone.now() + timedelta(seconds=3))
    ended = read_until_ended(server, short.headers)
    assert ended[:2] == ["/problems/key-expired", 401]


def test_a_stream_of_another_key_stays_open(server: live.Server, world: World) -> None:
    # Revoking carol's key ends only carol's stream; bob's goes on (its heartbeats still come).
    with (
        httpx.Client(base_url=server.url, headers={**world.bob.headers, **SSE}, timeout=stream_timeout()) as client,
        client.stream("GET", "/api/v2/records/stream") as response,
    ):
        sse = SseClient(response)
        sse.until("snapshot-end")
        ended = read_until_ended(server, world.carol.headers, before_end=lambda: key_revoke(key=world.carol.key))
        assert ended[0] == "/problems/key-revoked"
        for _ in range(3):
            assert sse.next_comment() == "heartbeat"


@pytest.mark.parametrize("how", ["revoked", "expired"])
def test_a_revoked_or_expired_key_ends_its_open_websocket_upload(
    server: live.Server, world: World, child_env: dict[str, str], how: str
) -> None:
    expires_at = timezone.now() + timedelta(seconds=3) if how == "expired" else None
    uploader = party(world.bob.org, "ws", expires_at=expires_at)
    url = f"ws://127.0.0.1:{server.port}/ws/v2/dicom/stream"
    instance = dicomfactory.make_instance(pixel_bytes=200_000)
    with connect(url, additional_headers=uploader.headers, max_size=None) as conn:
        conn.send(json.dumps({"content_type": "application/dicom"}))
        conn.send(instance[:65536])
        assert json.loads(conn.recv(timeout=30))["type"] == "ack"
        if how == "revoked":
            key_revoke(key=uploader.key)
        messages = []
        with pytest.raises(ConnectionClosed):
            while True:
                messages.append(json.loads(conn.recv(timeout=30)))
        assert conn.close_code == 4401
        assert conn.close_reason == f"key-{how}"
    assert [m["type"] for m in messages] == ["error"]
    assert messages[0]["problem"]["status"] == 401
    assert messages[0]["problem"]["type"] == f"/problems/key-{how}"
    # The unfinished upload is removed, as for a client that left.
    assert_nothing_left(child_env, world.bob.org)
