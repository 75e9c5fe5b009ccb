"""`/ws/v2/dicom/stream`: acknowledged binary frames, the same storage and limits as HTTP, and
indexing progress pushed until the upload is done."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from studies.models import Instance, Upload, UploadState
from tests.support import dicomfactory, live
from tests.support.ingest_support import nothing_left, stored, wait_for
from tests.support.world import World

FRAME = 64 * 1024


def ws(server: live.Server, token: str | None) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return connect(f"ws://127.0.0.1:{server.port}/ws/v2/dicom/stream", additional_headers=headers, max_size=None)


def send_payload(conn: ClientConnection, payload: bytes, content_type: str, **header: str) -> list[dict[str, Any]]:
    conn.send(json.dumps({"content_type": content_type, **header}))
    acks = []
    for offset in range(0, len(payload), FRAME):
        conn.send(payload[offset : offset + FRAME])
        acks.append(json.loads(conn.recv(timeout=30)))
    conn.send(json.dumps({"type": "end"}))
    return acks


def messages_until_close(conn: ClientConnection) -> list[dict[str, Any]]:
    out = []
    try:
        while True:
            out.append(json.loads(conn.recv(timeout=60)))
    except ConnectionClosed:
        return out


def test_it_acknowledges_every_frame_and_pushes_progress_to_done(
    server: live.Server, world: World, child_env: dict[str, str], indexer: object
) -> None:
    instance = dicomfactory.make_instance(patient_id="WS-1", pixel_bytes=300_000)
    request_id = str(uuid.uuid4())
    with ws(server, world.bob.token) as conn:
        acks = send_payload(conn, instance, "application/dicom", request_id=request_id)
        received = json.loads(conn.recv(timeout=30))
        progress = messages_until_close(conn)
        assert conn.close_code == 1000

    frames = [instance[i : i + FRAME] for i in range(0, len(instance), FRAME)]
    assert acks == [
        {"type": "ack", "seq": n, "bytes": len(f), "sha256": hashlib.sha256(f).hexdigest()}
        for n, f in enumerate(frames)
    ]
    assert received["type"] == "received" and received["request_id"] == request_id
    assert received["sha256"] == hashlib.sha256(instance).hexdigest()
    assert received["instances_accepted"] == 1
    assert progress[-1]["state"] == "done" and progress[-1]["instances_indexed"] == 1
    assert all(m["type"] == "progress" for m in progress)

    upload = Upload.objects.get(pk=request_id)
    assert upload.state == UploadState.DONE and upload.organization == world.bob.org
    [path] = stored(child_env, f"uploads/{world.bob.org.pk}/{request_id}")
    assert path.read_bytes() == instance
    assert Instance.objects.filter(organization=world.bob.org).count() == 1


def test_it_stores_an_upper_case_request_id_under_its_canonical_form(
    server: live.Server, world: World, child_env: dict[str, str]
) -> None:
    request_id = str(uuid.uuid4())
    with ws(server, world.bob.token) as conn:
        send_payload(conn, dicomfactory.make_instance(), "application/dicom", request_id=request_id.upper())
        received = json.loads(conn.recv(timeout=30))
    assert received["request_id"] == request_id
    assert stored(child_env, f"uploads/{world.bob.org.pk}/{request_id}")


def test_it_takes_a_multipart_stream_of_instances(server: live.Server, world: World, child_env: dict[str, str]) -> None:
    from tests.support.multipart import build_multipart

    instances = dicomfactory.make_study(n_series=2, per_series=5, patient_id="WS-2")
    body = build_multipart(instances, "ws-boundary")
    with ws(server, world.bob.token) as conn:
        send_payload(conn, body, 'application/dicom+stream; boundary="ws-boundary"')
        received = json.loads(conn.recv(timeout=30))
    assert received["instances_accepted"] == 10
    paths = stored(child_env, f"uploads/{world.bob.org.pk}/{received['request_id']}")
    assert [p.read_bytes() for p in paths] == instances


def test_it_refuses_a_body_that_is_not_dicom_from_its_first_frame(
    server: live.Server, world: World, child_env: dict[str, str]
) -> None:
    with ws(server, world.bob.token) as conn:
        conn.send(json.dumps({"content_type": "application/dicom"}))
        conn.send(b"this is not a DICOM file" * 20)
        error = json.loads(conn.recv(timeout=30))
        with pytest.raises(ConnectionClosed):
            conn.recv(timeout=30)
        assert conn.close_code == 4422
    assert error["type"] == "error" and error["problem"]["status"] == 422
    wait_for(lambda: nothing_left(child_env, world.bob.org))


@pytest.mark.parametrize(
    ("header", "status"),
    [({"content_type": "text/plain"}, 415), ({"content_type": "application/dicom", "request_id": "nope"}, 400)],
)
def test_it_refuses_a_bad_header(server: live.Server, world: World, header: dict[str, str], status: int) -> None:
    with ws(server, world.bob.token) as conn:
        conn.send(json.dumps(header))
        error = json.loads(conn.recv(timeout=30))
        with pytest.raises(ConnectionClosed):
            conn.recv(timeout=30)
        assert conn.close_code == 4000 + status
    assert error["problem"]["status"] == status


@pytest.mark.parametrize("token", [None, "pzm_" + "A" * 38])
def test_it_refuses_the_handshake_without_a_valid_key(server: live.Server, world: World, token: str | None) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(server, token)
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["www-authenticate"] == "Bearer"


def test_it_removes_what_a_client_sent_before_leaving(
    server: live.Server, world: World, child_env: dict[str, str]
) -> None:
    instance = dicomfactory.make_instance(patient_id="WS-3", pixel_bytes=400_000)
    with ws(server, world.bob.token) as conn:
        conn.send(json.dumps({"content_type": "application/dicom"}))
        conn.send(instance[:200_000])
        conn.recv(timeout=30)  # its ack: the server holds those bytes
    wait_for(lambda: nothing_left(child_env, world.bob.org))
