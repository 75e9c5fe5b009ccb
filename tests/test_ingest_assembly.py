"""A completed chunked stream is assembled by a worker (studies/ingest/assembly.py): instances
composed from the chunk objects byte for byte, the completing chunk answered once it is done
(or, past its wait, with the upload still `receiving`), and a worker killed mid-way losing
nothing: the task is delivered again and the upload holds each instance exactly once."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from studies.models import Stream, StreamState, Upload, UploadItem, UploadState
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.dicomweb_support import as_stored
from tests.support.ingest_support import BOUNDARY, digest_header, objects_dir, set_plan, sha, stored, wait_for
from tests.support.multipart import build_multipart
from tests.support.world import World

MIB = 1024 * 1024
MULTIPART = f"application/dicom+stream; boundary={BOUNDARY}"


def with_preamble(data: bytes, fill: int) -> bytes:
    """``data`` with a non-zero preamble: what PrizMed stores must have it zeroed."""
    return bytes([fill]) * 128 + data[128:]


def send_stream(
    client: httpx.Client,
    world: World,
    stream_id: str,
    body: bytes,
    chunk: int,
    content_type: str = MULTIPART,
    *,
    held: int = 0,
    last: bool = True,
) -> httpx.Response:
    """The chunks of ``body`` from seq ``held`` on, in order, the final one marked the last when
    ``last``; the final chunk's answer."""
    chunks = [body[i : i + chunk] for i in range(0, len(body), chunk)]
    answer = None
    for seq in range(held, len(chunks)):
        final = "true" if last and seq == len(chunks) - 1 else "false"
        headers = {**world.bob.headers, "Content-Type": content_type, "X-Stream-Id": stream_id, "X-Chunk-Seq": str(seq),
                   "X-Chunk-Last": final, "Content-Digest": digest_header(chunks[seq])}  # fmt: skip
        answer = client.post("/dicom/stream", content=chunks[seq], headers=headers, timeout=120)
        assert answer.status_code == 202, answer.text
    assert answer is not None
    return answer


def assert_holds(child_env: dict[str, str], upload: dict[str, Any], instances: list[bytes]) -> None:
    """The upload holds exactly ``instances``, preambles zeroed, one object each, in order."""
    expected = [as_stored(i) for i in instances]
    assert upload["instances_accepted"] == len(instances) and upload["sha256"] == sha(b"".join(expected))
    items = UploadItem.objects.filter(upload_id=upload["request_id"]).order_by("position")
    assert [(objects_dir(child_env) / item.object_key).read_bytes() for item in items] == expected
    assert [item.sha256 for item in items] == [sha(e) for e in expected]
    assert len(stored(child_env, items[0].object_key.rsplit("/", 1)[0])) == len(instances)


def test_it_composes_large_instances_from_the_chunks_and_writes_small_ones(
    api: httpx.Client, world: World, child_env: dict[str, str], indexer
) -> None:
    set_plan(world.bob.org, bandwidth_bps=None)
    instances = [
        with_preamble(make_instance(patient_id="A-1", pixel_bytes=3 * MIB), 0x4D),  # composed (local: over 1 MiB)
        with_preamble(make_instance(patient_id="A-1", pixel_bytes=40_000), 0x5A),  # written from the bytes in hand
        with_preamble(make_instance(patient_id="A-1", pixel_bytes=2 * MIB + 17), 0x7F),  # composed, odd edges
    ]
    answer = send_stream(api, world, "compose", build_multipart(instances, BOUNDARY), chunk=700_001).json()
    assert answer["stream_state"] == "complete" and answer["upload"]["state"] != "receiving"
    assert_holds(child_env, answer["upload"], instances)
    stream = Stream.objects.get(organization=world.bob.org, stream_id="compose")
    assert stream.state == StreamState.COMPLETE and stream.assembly_problem is None


@pytest.mark.services  # embedded, the server assembles on its own thread: no worker can be late
def test_it_answers_with_the_upload_receiving_when_no_worker_assembles_in_time(
    world: World, child_env: dict[str, str], run_dir: Path, request: pytest.FixtureRequest
) -> None:
    srv = live.server({**child_env, "STREAMS_ASSEMBLY_WAIT_SECONDS": "1"}, run_dir)
    try:
        instance = make_instance(patient_id="A-2")
        with httpx.Client(base_url=f"{srv.url}/api/v2", timeout=30) as client:
            started = time.monotonic()
            answer = send_stream(client, world, "late", instance, chunk=100_000, content_type="application/dicom")
            assert time.monotonic() - started < 10
            body = answer.json()
            assert body["stream_state"] == "open" and body["upload"]["state"] == "receiving"
            status_href = body["upload"]["links"]["status"]["href"]
            request.getfixturevalue("worker")  # a worker arrives: the queued assembly runs
            wait_for(lambda: Upload.objects.get(pk=body["upload"]["request_id"]).state != UploadState.RECEIVING)
            status = client.get(status_href.removeprefix("/api/v2"), headers=world.bob.headers)
            assert status.status_code == 200 and status.json()["state"] != "receiving"
    finally:
        srv.stop()
    assert Upload.objects.get(pk=body["upload"]["request_id"]).sha256 == sha(as_stored(instance))


@pytest.mark.services
def test_it_assembles_exactly_once_after_the_assembling_worker_is_killed(
    api: httpx.Client, world: World, child_env: dict[str, str], run_dir: Path
) -> None:
    set_plan(world.bob.org, bandwidth_bps=None)
    quick = {"CELERY_VISIBILITY_TIMEOUT": "3"}  # Redis redelivers the lost task after 3 s
    instances = [make_instance(patient_id="A-3", pixel_bytes=60_000) for _ in range(1500)]
    body = build_multipart(instances, BOUNDARY)
    size = 8 * MIB
    send_stream(api, world, "killed", body[: len(body) // size * size], size, last=False)  # all but the last
    first = live.worker_start(child_env, run_dir, **quick)
    answers: list[httpx.Response] = []
    held = len(body) // size
    completing = threading.Thread(
        target=lambda: answers.append(send_stream(api, world, "killed", body, size, held=held))
    )
    completing.start()
    wait_for(lambda: len(stored(child_env, f"uploads/{world.bob.org.pk}")) >= 50, timeout=60)
    first.kill()  # SIGKILL mid-assembly: no chance to ack, clean up or finish
    written = len(stored(child_env, f"uploads/{world.bob.org.pk}"))
    assert written < len(instances), "the assembly finished before the kill: nothing was tested"
    time.sleep(int(quick["CELERY_VISIBILITY_TIMEOUT"]) + 0.5)
    second = live.worker_start(child_env, run_dir, **quick)
    try:
        completing.join(timeout=120)
    finally:
        second.stop()
    (answer,) = answers
    assert answer.status_code == 202, answer.text
    assert answer.json()["stream_state"] == "complete"
    assert_holds(child_env, answer.json()["upload"], instances)
