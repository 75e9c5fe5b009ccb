"""Revocation and expiry end access at once (issue 10 item 10): a key's open SSE stream gets a
last `access-ended` event and ends, its open WebSocket an error frame and close code 4401; the
consumers clean up as for a client that left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from accounts.services import key_revoke
from tests.support import dicomfactory, live
from tests.support.ingest_support import assert_nothing_left
from tests.support.records_support import SseClient, index_study, stream_timeout
from tests.support.world import World, party

SSE = {"Accept": "text/event-stream"}


MAX_HEARTBEATS = 60  # they come every second here: a stream still open after as many failed


def read_until_ended(server: live.Server, headers: dict[str, str], before_end: object = None) -> list[str]:
    """Open an SSE stream, run `before_end` once the snapshot is in, and read until the stream
    ends (failing if it outlives MAX_HEARTBEATS heartbeats); the last event must be the ending
    one. Returns its problem type and status, then the names of the events before it."""
    with (
        httpx.Client(base_url=server.url, headers={**headers, **SSE}, timeout=stream_timeout()) as client,
        client.stream("GET", "/api/v2/records/stream") as response,
    ):
        assert response.status_code == 200
        sse = SseClient(response)
        sse.until("snapshot-end")
        if callable(before_end):
            before_end()
        events: list[dict[str, str]] = []
        fields: dict[str, str] = {}
        heartbeats = 0
        for line in sse.lines:
            if line.startswith(":"):
                heartbeats += 1
                assert heartbeats <= MAX_HEARTBEATS, "the stream stayed open"
            elif line:
                name, _, value = line.partition(":")
                fields[name] = value.removeprefix(" ")
            elif fields:
                events.append(fields)
                fields = {}
    assert events, "the stream ended without saying why"
    last = events[-1]
    assert last["event"] == "access-ended"
    problem = json.loads(last["data"])
    return [problem["type"], problem["status"], *(e.get("event", "message") for e in events[:-1])]


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


@pytest.fixture
def slow_recheck(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    """A server whose periodic key re-check is an hour away: only the wake-up can end a stream."""
    srv = live.server({**child_env, "PRIZMED_KEY_RECHECK_SECONDS": "3600"}, run_dir)
    yield srv
    srv.stop()


def revoke_in_dashboard(server: live.Server, key_id: int) -> None:
    """The dashboard's "Revoke selected keys" action, as a staff browser posts it."""
    User.objects.create_superuser("dana", "dana@acme.test", "correct-horse-battery")
    with httpx.Client(base_url=server.url, timeout=30, follow_redirects=True) as browser:
        browser.get("/admin/login/")
        login = {"username": "dana", "password": "correct-horse-battery", "next": "/admin/"}
        browser.post("/admin/login/", data={**login, "csrfmiddlewaretoken": browser.cookies["csrftoken"]})
        browser.get("/admin/accounts/apikey/")
        action = {"action": "revoke_keys", "_selected_action": str(key_id), "index": "0"}
        done = browser.post(
            "/admin/accounts/apikey/", data={**action, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        )
    assert "Selected keys are revoked" in done.text


def test_a_revocation_in_the_dashboard_ends_streams_at_once(slow_recheck: live.Server, world: World) -> None:
    ended = read_until_ended(
        slow_recheck, world.bob.headers, before_end=lambda: revoke_in_dashboard(slow_recheck, world.bob.key.pk)
    )
    assert ended[:2] == ["/problems/key-revoked", 401]


@pytest.mark.services  # another process's revocation reaches the server over Redis
def test_a_revocation_in_another_process_ends_streams_at_once(slow_recheck: live.Server, world: World) -> None:
    ended = read_until_ended(slow_recheck, world.bob.headers, before_end=lambda: key_revoke(key=world.bob.key))
    assert ended[:2] == ["/problems/key-revoked", 401]
