"""Chunked, resumable streams (X-Stream-Id): out of order, retried, conflicting, resumed."""

from __future__ import annotations

import random
import threading
from typing import Any

import httpx

from studies.ingest.selectors import ChunkHeld, SeqRange, stream_status
from studies.models import Chunk, Stream, StreamState, Upload, UploadItem
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import (
    RawRequest,
    assert_nothing_left,
    digest_header,
    objects_dir,
    partials,
    set_plan,
    sha,
    stored,
    wait_for,
)
from tests.support.world import World
from tests.test_auth import assert_problem

MB = 1024 * 1024
DICOM = {"Content-Type": "application/dicom"}


def cut(payload: bytes, size: int) -> list[bytes]:
    return [payload[i : i + size] for i in range(0, len(payload), size)]


def send_chunk(
    client: httpx.Client, party_headers: dict[str, str], stream_id: str, seq: int, data: bytes, *, last: bool = False
) -> httpx.Response:
    headers = {
        **party_headers,
        **DICOM,
        "X-Stream-Id": stream_id,
        "X-Chunk-Seq": str(seq),
        "X-Chunk-Last": "true" if last else "false",
        "Content-Digest": digest_header(data),
    }
    return client.post("/dicom/stream", content=data, headers=headers)


def assert_assembled(child_env, world: World, stream_id: str, payload: bytes, answer: dict[str, Any]) -> None:
    """The stream is complete, its chunks freed, and its upload holds exactly the payload."""
    upload = answer["upload"]
    assert upload["sha256"] == sha(payload) and upload["bytes_received"] == len(payload)
    assert upload["instances_accepted"] == 1
    stream = Stream.objects.get(organization=world.bob.org, stream_id=stream_id)
    assert stream.state == StreamState.COMPLETE and str(stream.upload_id) == upload["request_id"]
    assert Upload.objects.get(pk=upload["request_id"]).sha256 == sha(payload)
    item = UploadItem.objects.get(upload_id=upload["request_id"])
    assert (objects_dir(child_env) / item.object_key).read_bytes() == payload
    wait_for(lambda: not stored(child_env, f"streams/{world.bob.org.pk}/{stream.pk}"))


def test_it_assembles_200_mb_sent_out_of_order_with_a_retry_and_a_conflict(
    api: httpx.Client, world: World, child_env, indexer
) -> None:
    set_plan(world.bob.org, bandwidth_bps=None)  # unpaced: at 100 Mbps this alone takes 16 s
    payload = make_instance(pixel_bytes=200 * MB)
    chunks = cut(payload, 8 * MB)
    last = len(chunks) - 1
    order = list(range(last + 1))
    random.Random(3).shuffle(order)
    order.remove(last)
    order.insert(2, last)  # the last chunk arrives early: the stream waits for the others
    final = order.pop()  # the one that completes the stream

    for seq in order:
        response = send_chunk(api, world.bob.headers, "big", seq, chunks[seq], last=seq == last)
        assert response.status_code == 202, response.text
        assert response.json()["upload"] is None and response.json()["stream_state"] == "open"
        assert response.json()["sha256"] == sha(chunks[seq])

    retried = send_chunk(api, world.bob.headers, "big", order[0], chunks[order[0]])
    assert retried.status_code == 202 and retried.json()["bytes"] == len(chunks[order[0]])
    conflicting = send_chunk(api, world.bob.headers, "big", order[1], b"other" + chunks[order[1]][5:])
    assert_problem(conflicting, 409)

    status = api.get("/dicom/streams/big", headers=world.bob.headers).json()
    assert (
        status["state"] == "open"
        and status["last_seq"] == last
        and status["missing"] == [{"first": final, "last": final}]
    )
    assert [c["seq"] for c in status["chunks"]] == sorted(order)
    assert Chunk.objects.filter(stream__stream_id="big").count() == last  # nothing stored twice

    completing = send_chunk(api, world.bob.headers, "big", final, chunks[final])

    assert completing.status_code == 202, completing.text
    assert completing.json()["stream_state"] == "complete"
    assert_assembled(child_env, world, "big", payload, completing.json())
    # A late retry of a chunk is still a no-op: it answers with the upload.
    late = send_chunk(api, world.bob.headers, "big", final, chunks[final])
    assert late.status_code == 202
    assert late.json()["upload"]["request_id"] == completing.json()["upload"]["request_id"]


def test_it_resumes_after_a_connection_dropped_mid_chunk(server: live.Server, world: World, child_env, indexer) -> None:
    payload = make_instance(pixel_bytes=3 * MB)
    chunks = cut(payload, MB + 7)
    with httpx.Client(base_url=f"{server.url}/api/v2", timeout=30) as client:
        assert send_chunk(client, world.bob.headers, "drop", 0, chunks[0]).status_code == 202
        headers = {**world.bob.headers, **DICOM, "X-Stream-Id": "drop", "X-Chunk-Seq": "1"}
        raw = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Content-Length": str(len(chunks[1]))})
        raw.send(chunks[1][: len(chunks[1]) // 2])
        raw.close()
        wait_for(lambda: not partials(child_env))

        status = client.get("/dicom/streams/drop", headers=world.bob.headers).json()
        assert [c["seq"] for c in status["chunks"]] == [0]  # the cut chunk was never held
        for seq in range(1, len(chunks)):
            response = send_chunk(client, world.bob.headers, "drop", seq, chunks[seq], last=seq == len(chunks) - 1)
            assert response.status_code == 202, response.text

    assert_assembled(child_env, world, "drop", payload, response.json())


def race_last_two(
    urls: list[str], headers: dict[str, str], stream_id: str, chunks: list[bytes]
) -> list[httpx.Response]:
    """Send the last two chunks at the same moment, one to each server process."""
    answers: list[httpx.Response] = []

    def send(url: str, seq: int) -> None:
        with httpx.Client(base_url=f"{url}/api/v2", timeout=30) as client:
            last = seq == len(chunks) - 1
            answers.append(send_chunk(client, headers, stream_id, seq, chunks[seq], last=last))

    threads = [threading.Thread(target=send, args=(url, len(chunks) - 2 + i)) for i, url in enumerate(urls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_it_assembles_exactly_once_when_the_last_two_chunks_race(
    server: live.Server, server2: live.Server, world: World, child_env, indexer
) -> None:
    for attempt in range(4):
        stream_id = f"race-{attempt}"
        payload = make_instance(pixel_bytes=2 * MB)
        chunks = cut(payload, 256 * 1024)
        with httpx.Client(base_url=f"{server.url}/api/v2", timeout=30) as client:
            for seq in range(len(chunks) - 2):
                assert send_chunk(client, world.bob.headers, stream_id, seq, chunks[seq]).status_code == 202
        answers = race_last_two([server.url, server2.url], world.bob.headers, stream_id, chunks)

        assert [a.status_code for a in answers] == [202, 202]
        completed = [a.json() for a in answers if a.json()["upload"] is not None]
        assert len(completed) == 1  # the other one saw the stream already claimed
        stream = Stream.objects.get(organization=world.bob.org, stream_id=stream_id)
        assert Upload.objects.filter(stream=stream).count() == 1
        assert_assembled(child_env, world, stream_id, payload, completed[0])


def test_it_keeps_a_stream_to_its_first_content_type_and_its_last_chunk(api: httpx.Client, world: World) -> None:
    instance = make_instance()
    assert send_chunk(api, world.bob.headers, "s", 0, instance[:1000]).status_code == 202
    other_type = {**world.bob.headers, "Content-Type": "application/octet-stream", "X-Stream-Id": "s"}
    assert_problem(api.post("/dicom/stream", content=b"x", headers={**other_type, "X-Chunk-Seq": "1"}), 409)
    assert send_chunk(api, world.bob.headers, "s", 3, b"xyz", last=True).status_code == 202
    assert_problem(send_chunk(api, world.bob.headers, "s", 4, b"after the last"), 409)
    assert_problem(send_chunk(api, world.bob.headers, "s", 2, b"a second last", last=True), 409)
    assert Chunk.objects.filter(stream__stream_id="s").count() == 2


def test_it_aborts_a_stream_and_frees_its_chunks(api: httpx.Client, world: World, child_env) -> None:
    instance = make_instance(pixel_bytes=100_000)
    assert send_chunk(api, world.bob.headers, "gone", 0, instance[:50_000]).status_code == 202
    stream = Stream.objects.get(stream_id="gone")
    assert stored(child_env, f"streams/{world.bob.org.pk}/{stream.pk}")

    assert api.delete("/dicom/streams/gone", headers=world.carol.headers).status_code == 404
    response = api.delete("/dicom/streams/gone", headers=world.bob.headers)

    assert response.status_code == 204
    stream.refresh_from_db()
    assert stream.state == StreamState.ABORTED
    assert not stored(child_env, f"streams/{world.bob.org.pk}/{stream.pk}")
    assert api.get("/dicom/streams/gone", headers=world.bob.headers).json()["state"] == "aborted"
    assert_problem(send_chunk(api, world.bob.headers, "gone", 1, instance[50_000:], last=True), 409)
    assert api.delete("/dicom/streams/gone", headers=world.bob.headers).status_code == 204  # idempotent


def test_it_refuses_to_abort_a_complete_stream(api: httpx.Client, world: World, indexer) -> None:
    assert send_chunk(api, world.bob.headers, "done", 0, make_instance(), last=True).status_code == 202
    assert_problem(api.delete("/dicom/streams/done", headers=world.bob.headers), 409)


def test_it_refuses_a_first_chunk_that_is_not_dicom_and_leaves_nothing(
    server: live.Server, world: World, child_env
) -> None:
    headers = {**world.bob.headers, **DICOM, "X-Stream-Id": "bad", "X-Chunk-Seq": "0", "Content-Length": "50000000"}
    raw = RawRequest(server.url, "/api/v2/dicom/stream", headers)
    raw.send(b"GIF89a" + b"\0" * 300)
    assert raw.response().status == 422  # from the first bytes, not after 50 MB
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_stream_that_assembles_to_non_dicom_and_keeps_it_resumable(
    api: httpx.Client, world: World, child_env, indexer
) -> None:
    instance = make_instance()
    assert send_chunk(api, world.bob.headers, "cut", 0, instance[:200]).status_code == 202
    # The meta group of chunk 0 is completed by chunk 1 with garbage: found when assembling.
    response = send_chunk(api, world.bob.headers, "cut", 1, b"\xff" * 500, last=True)
    assert_problem(response, 422)
    stream = Stream.objects.get(stream_id="cut")
    assert stream.state == StreamState.OPEN and stream.upload_id is None  # resumable, not aborted
    assert stream.assembly_problem is not None and stream.assembly_problem["slug"] == "not-dicom"
    assert not Upload.objects.filter(organization=world.bob.org).exists()
    assert not stored(child_env, f"uploads/{world.bob.org.pk}")
    assert len(stored(child_env, f"streams/{world.bob.org.pk}")) == 2  # its chunks are kept

    corrected = send_chunk(api, world.bob.headers, "cut", 1, instance[200:], last=True)  # the chunk at fault, fixed

    assert corrected.status_code == 202, corrected.text
    assert corrected.json()["stream_state"] == "complete" and corrected.json()["upload"]["sha256"] == sha(instance)
    assert Stream.objects.get(stream_id="cut").assembly_problem is None  # the refusal is over
    assert_problem(send_chunk(api, world.bob.headers, "cut", 1, b"\xff" * 500, last=True), 409)  # complete: as before


def test_it_refuses_a_stream_growing_past_the_plan_study_size(api: httpx.Client, world: World, child_env) -> None:
    set_plan(world.bob.org, max_study_bytes=1_500_000)
    instance = make_instance(pixel_bytes=1_600_000)
    assert send_chunk(api, world.bob.headers, "huge", 0, instance[:1_000_000]).status_code == 202
    response = send_chunk(api, world.bob.headers, "huge", 1, instance[1_000_000:], last=True)
    assert_problem(response, 413)
    assert [c["seq"] for c in api.get("/dicom/streams/huge", headers=world.bob.headers).json()["chunks"]] == [0]
    wait_for(lambda: not partials(child_env))


def test_it_holds_the_plan_study_size_when_chunks_arrive_in_parallel(
    server: live.Server, world: World, child_env
) -> None:
    set_plan(world.bob.org, max_study_bytes=1_500_000)
    instance = make_instance(pixel_bytes=1_800_000)
    first, second, third = instance[:600_000], instance[600_000:1_200_000], instance[1_200_000:1_800_000]
    with httpx.Client(base_url=f"{server.url}/api/v2", timeout=30) as client:
        assert send_chunk(client, world.bob.headers, "wide", 0, first).status_code == 202
    # Both bodies begin while 600,000 bytes are held: each fits the 900,000 left, not both.
    requests = []
    for seq, data in ((1, second), (2, third)):
        headers = {**world.bob.headers, **DICOM, "X-Stream-Id": "wide", "X-Chunk-Seq": str(seq),
                   "Content-Length": str(len(data))}  # fmt: skip
        request = RawRequest(server.url, "/api/v2/dicom/stream", headers)
        request.send(data[:-1])
        requests.append((request, data))
    wait_for(lambda: len(partials(child_env)) == 2)  # both are being written
    for request, data in requests:
        request.send(data[-1:])
    statuses = sorted(request.response().status for request, _ in requests)

    assert statuses == [202, 413]
    held = Chunk.objects.filter(stream__stream_id="wide")
    assert sorted(chunk.size for chunk in held) == [600_000, 600_000]
    wait_for(lambda: not partials(child_env))


def test_it_reads_a_streams_status_in_a_selector(world: World) -> None:
    stream = Stream.objects.create(organization=world.bob.org, stream_id="s-status", content_type="application/dicom")
    for seq in (0, 3):
        Chunk.objects.create(stream=stream, seq=seq, size=10 + seq, sha256=f"{seq}" * 64, object_key=f"k/{seq}")

    status = stream_status(organization=world.bob.org, stream_id="s-status")

    assert status is not None and status.stream == stream
    assert status.chunks == [ChunkHeld(0, 10, "0" * 64), ChunkHeld(3, 13, "3" * 64)]
    assert (status.missing, status.bytes_received, status.upload) == ([SeqRange(1, 2)], 23, None)
    assert status.expires is not None and status.expires > stream.updated
    assert stream_status(organization=world.carol.org, stream_id="s-status") is None
