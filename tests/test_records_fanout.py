"""The process's log reader and a stream's bounded feed (records/fanout.py), in this process.

A stream whose client does not read (its generator is not advanced) while more events arrive
than its feed holds: the feed stays within its capacity, and when the client reads again the
stream reads the log itself and delivers every event once, in order.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from django.db import connections

from records import fanout
from records.request import SSE, StreamRequest
from records.selectors import RecordFilter, log_head
from records.services import stream_loop_register
from records.streaming import SseStream
from tests.support.records_support import index_study, rename_patient
from tests.support.world import World

IDS = re.compile(rb"^id: (\d+)$", re.MULTILINE)


@pytest.fixture(autouse=True)
def pool_closed() -> Iterator[None]:
    yield
    # The reader and the streams used connections on executor threads; in the services run those
    # go back to PostgreSQL's connection pool, which would keep the test database busy at the end.
    connections.close_all()
    for conn in connections.all():
        if conn.vendor == "postgresql":
            conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's


def stream_request(position: int, flt: RecordFilter | None = None) -> StreamRequest:
    return StreamRequest(
        media_type=SSE,
        flt=flt or RecordFilter(),
        position=position,
        session_id=None,
        record_id=None,
        count=100,
        cursor=0,
    )


async def ids_until(frames: AsyncIterator[bytes], last: int) -> list[int]:
    seen: list[int] = []
    while not seen or seen[-1] < last:
        seen.extend(int(n) for n in IDS.findall(await anext(frames)))
    return seen


def reader(organization_id: int) -> fanout.LogReader:
    return fanout._readers[(asyncio.get_running_loop(), organization_id)]


async def reader_at(organization_id: int, head: int) -> None:
    while (reader(organization_id).head or 0) < head:  # bounded by the test's own timeout
        await asyncio.sleep(0.02)


def test_it_bounds_a_slow_streams_feed_and_the_stream_reads_the_log_itself(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "RECORDS_STREAM_BUFFER_EVENTS", 10)
    monkeypatch.setattr(settings, "RECORDS_POLL_SECONDS", 1)
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")  # seq 1, 2

    def changes() -> int:
        for n in range(30):
            rename_patient(acme, "P1", f"Doe^Jane{n}")
        return log_head(organization_id=acme.pk)

    async def scenario() -> None:
        stream_loop_register(asyncio.get_running_loop())  # as the consumer does: wake-ups reach this loop
        async with fanout.feed_open(acme.pk) as quick:
            await reader_at(acme.pk, 2)  # started: a feed that joins now is not made to read the log
            async with fanout.feed_open(acme.pk) as slow:
                await overflow_then_catch_up(quick, slow)

    async def overflow_then_catch_up(quick: fanout.Feed, slow: fanout.Feed) -> None:
        slow_frames = SseStream(organization_id=acme.pk, api_key_id=None, req=stream_request(2), feed=slow).frames()
        quick_frames = SseStream(organization_id=acme.pk, api_key_id=None, req=stream_request(2), feed=quick).frames()
        assert (await anext(slow_frames)).startswith(b"retry:")  # then the slow client stops reading
        assert (await anext(quick_frames)).startswith(b"retry:")
        head = await database_sync_to_async(changes)()
        assert await ids_until(quick_frames, head) == list(range(3, head + 1))
        await reader_at(acme.pk, head)
        # 30 events offered, the slow feed holds none of them: it overflowed instead of growing.
        assert slow.dropped and slow.held == 0 and not slow.offers and slow.overflows == 1

        # The client reads again: the stream reads the log itself, from its own position.
        before = slow.queries
        assert await ids_until(slow_frames, head) == list(range(3, head + 1))
        assert slow.queries > before
        # And goes on with the next change.
        await database_sync_to_async(rename_patient)(acme, "P1", "Doe^Janet")
        assert await ids_until(slow_frames, head + 1) == [head + 1]
        assert await ids_until(quick_frames, head + 1) == [head + 1]

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_it_filters_offered_events_per_stream(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "RECORDS_POLL_SECONDS", 1)
    acme = world.bob.org

    async def scenario() -> None:
        stream_loop_register(asyncio.get_running_loop())
        async with fanout.feed_open(acme.pk) as everything, fanout.feed_open(acme.pk) as p2_only:
            all_frames = SseStream(organization_id=acme.pk, api_key_id=None, req=stream_request(0), feed=everything)
            p2_frames = SseStream(
                organization_id=acme.pk,
                api_key_id=None,
                req=stream_request(0, RecordFilter(patient="P2")),
                feed=p2_only,
            )
            frames, filtered = all_frames.frames(), p2_frames.frames()
            await anext(frames), await anext(filtered)
            # Both streams past their own first read of the log: what follows comes from the reader.
            reading = asyncio.gather(ids_until(frames, 4), ids_until(filtered, 4))
            while everything.queries == 0 or p2_only.queries == 0 or reader(acme.pk).head is None:
                await asyncio.sleep(0.02)
            await database_sync_to_async(index_study)(acme, patient_id="P1", study_uid="1.2.3.1")  # seq 1, 2
            await database_sync_to_async(index_study)(acme, patient_id="P2", study_uid="1.2.3.2")  # seq 3, 4
            everything_ids, p2_ids = await reading
            assert (everything_ids, p2_ids) == ([1, 2, 3, 4], [3, 4])
            assert reader(acme.pk).stats.events == 4

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))


def test_the_reader_wakes_only_the_streams_that_owe_a_heartbeat(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "RECORDS_HEARTBEAT_SECONDS", 1)
    acme = world.bob.org

    async def scenario() -> None:
        stream_loop_register(asyncio.get_running_loop())
        async with fanout.feed_open(acme.pk) as idle, fanout.feed_open(acme.pk) as busy:
            now = asyncio.get_running_loop().time()
            idle.sent_at = now - 5  # nothing sent for longer than the interval
            busy.sent_at = now + 3600  # as if it sent something at every moment of the test
            while not idle.beat_due:  # bounded by the scenario's timeout
                await asyncio.sleep(0.02)
            assert idle.ready.is_set()
            assert not busy.beat_due

            # The idle stream (its log read done, with nothing to send) sends its heartbeat comment.
            frames = SseStream(organization_id=acme.pk, api_key_id=None, req=stream_request(0), feed=idle).frames()
            assert (await anext(frames)).startswith(b"retry:")
            assert await anext(frames) == b": heartbeat\n\n"
            assert not idle.beat_due

    asyncio.run(asyncio.wait_for(scenario(), timeout=60))
