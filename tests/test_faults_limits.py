"""Issue 10 items 2 and 7: no single request, and no organization, can make the server hold or
build unbounded things. Chunk seqs are bounded by the plan's study size in minimum-size chunks;
a stream's status lists missing seqs as ranges; open streams, and bytes held in them, are
capped per organization.
"""

from __future__ import annotations

import httpx
from django.conf import settings

from studies.ingest.session import max_chunk_seq
from studies.models import Chunk, Stream, StreamState
from tests.support.world import World
from tests.test_auth import assert_problem

DICOM = {"Content-Type": "application/dicom"}


def chunk(api: httpx.Client, world: World, stream_id: str, seq: int, body: bytes = b"x") -> httpx.Response:
    headers = {**world.bob.headers, **DICOM, "X-Stream-Id": stream_id, "X-Chunk-Seq": str(seq)}
    return api.post("/dicom/stream", content=body, headers=headers)


def test_a_chunk_seq_past_the_plans_size_in_minimum_chunks_is_400(api: httpx.Client, world: World) -> None:
    high = max_chunk_seq(world.bob.org.plan.max_study_bytes)
    assert high < 99_999_999  # the professional plan's 4 GB in 64 KiB chunks

    response = chunk(api, world, "far", 99_999_999)

    assert_problem(response, 400)
    assert response.json()["parameter"] == "X-Chunk-Seq" and f"from 0 to {high}" in response.json()["detail"]
    assert not Stream.objects.filter(stream_id="far").exists()


def test_a_streams_status_lists_missing_ranges_not_every_seq(api: httpx.Client, world: World) -> None:
    high = max_chunk_seq(world.bob.org.plan.max_study_bytes)
    assert chunk(api, world, "sparse", high).status_code == 202
    assert chunk(api, world, "sparse", 5).status_code == 202

    status = api.get("/dicom/streams/sparse", headers=world.bob.headers)

    assert status.status_code == 200
    assert status.json()["missing"] == [{"first": 0, "last": 4}, {"first": 6, "last": high - 1}]
    assert len(status.content) < 2000  # two ranges, not ~65 000 numbers


def test_open_streams_per_organization_are_capped(api: httpx.Client, world: World) -> None:
    cap = settings.STREAMS_MAX_OPEN_PER_ORG
    Stream.objects.bulk_create(
        Stream(organization=world.bob.org, stream_id=f"held-{i}", content_type="application/dicom") for i in range(cap)
    )

    response = chunk(api, world, "one-too-many", 0)

    assert_problem(response, 429)
    assert response.json()["type"] == "/problems/too-many-open-streams" and "retry-after" in response.headers
    assert not Stream.objects.filter(stream_id="one-too-many").exists()
    Stream.objects.filter(stream_id="held-0").update(state=StreamState.ABORTED)  # one slot free again
    assert chunk(api, world, "one-too-many", 1).status_code == 202
    assert chunk(api, world, "held-1", 0).status_code == 202  # open streams take chunks as before


def test_bytes_held_in_open_streams_per_organization_are_capped(api: httpx.Client, world: World) -> None:
    stream = Stream.objects.create(organization=world.bob.org, stream_id="full", content_type="application/dicom")
    Chunk.objects.create(
        stream=stream, seq=1, size=settings.STREAMS_MAX_HELD_BYTES_PER_ORG, sha256="0" * 64, object_key="k/1"
    )

    response = chunk(api, world, "other", 1)

    assert_problem(response, 429)
    assert response.json()["type"] == "/problems/open-streams-full"
    assert not Chunk.objects.filter(stream__stream_id="other").exists()
    Stream.objects.filter(pk=stream.pk).update(state=StreamState.ABORTED)
    assert chunk(api, world, "other", 1).status_code == 202
