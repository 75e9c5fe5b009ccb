"""One reader of the record log per process and organization, feeding every live SSE stream.

A `LogReader` per (event loop, organization) reads the log once per wake-up, however many of the
organization's streams this process serves, and offers the new events to each stream's `Feed`;
each stream then keeps what is after its own position and matches its own filters
(records/streaming.py). The log stays the source of truth: the channel layer's `records.wake`
only says the log grew, up to which number; the reader also re-reads every
RECORDS_POLL_SECONDS, so a lost wake-up costs latency, never an event.

The per-stream work of an event is what 1,000 clients multiply: the reader encodes each event's
SSE frame once and joins an offer's frames once (`Offer.body`), so an unfiltered stream that is
up to date sends those very bytes; and it keeps the streams' heartbeats with one timer
(`_heartbeats`), waking only a stream that has sent nothing for RECORDS_HEARTBEAT_SECONDS, so a
stream waits for its feed with no timer of its own to arm and cancel on every event.

A feed holds at most RECORDS_STREAM_BUFFER_EVENTS events. A stream whose client reads more
slowly than events arrive finds its feed overflowed, and reads the log itself from its own
position (one batch at a time, as when it connected) before it takes offers again: server memory
per stream stays bounded whatever a client does.

Every reader counts the SQL statements it runs (and those of its streams' own reads) and logs
them when its last stream leaves (`records log reader stopped`): bench/records.py reports them
as queries per event per process.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from django.db import connection

from records.selectors import LogEntry, log_head, log_read
from records.services import org_group
from records.sse import sse

log = logging.getLogger("prizmed.records.fanout")

T = TypeVar("T")
READ_ROWS = 500  # events per log read; a larger backlog takes several reads


@dataclass(frozen=True)
class LiveEvent:
    seq: int
    patient_id: str  # for the streams' filters
    study_uid: str
    frame: bytes  # the SSE event, encoded once for every stream


@dataclass(frozen=True)
class Offer:
    """Every event numbered after `after` up to `up_to`, in order, unfiltered; `body` is their
    frames joined, shared by every stream that takes them all."""

    after: int
    up_to: int
    events: tuple[LiveEvent, ...]
    body: bytes


class Feed:
    """One stream's queue of offers, bounded to `capacity` events.

    `ready` is set when something arrives, or when the stream owes its client a heartbeat
    (`beat_due`: it has sent nothing since `sent_at` + RECORDS_HEARTBEAT_SECONDS, its stream sets
    `sent_at` as it sends). Past the capacity the queue is dropped (`drop`): `take` then answers
    None once, telling the stream to read the log itself.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.offers: deque[Offer] = deque()
        self.held = 0  # events in `offers`
        self.dropped = False  # offers were dropped since the last take
        self.overflows = 0
        self.queries = 0  # SQL statements of the stream's own log reads
        self.ready = asyncio.Event()
        self.sent_at = asyncio.get_running_loop().time()  # the event loop's clock
        self.beat_due = False

    def offer(self, offer: Offer) -> None:
        if self.dropped:
            return
        if self.held + len(offer.events) > self.capacity:
            self.overflows += 1
            self.drop()
            return
        self.offers.append(offer)
        self.held += len(offer.events)
        self.ready.set()

    def beat(self) -> None:
        self.beat_due = True
        self.ready.set()

    def drop(self) -> None:
        """Make the stream read the log itself from its position before it takes offers again."""
        self.offers.clear()
        self.held, self.dropped = 0, True
        self.ready.set()

    def take(self) -> list[Offer] | None:
        """The offers held, oldest first (the feed is emptied), or None if offers were dropped
        since the last take: the stream reads the log from its position; later offers are kept."""
        self.ready.clear()
        if self.dropped:
            self.dropped = False
            return None
        offers = list(self.offers)
        self.offers.clear()
        self.held = 0
        return offers


@contextmanager
def queries_counted() -> Iterator[list[int]]:
    """Counts the SQL statements run on this thread's connection inside the block: [count]."""
    count = [0]

    def counter(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        count[0] += 1
        return execute(sql, params, many, context)

    with connection.execute_wrapper(counter):
        yield count


def counted(fn: Callable[..., T], /, **kwargs: Any) -> tuple[T, int]:
    """fn(**kwargs), and the number of SQL statements it ran."""
    with queries_counted() as count:
        result = fn(**kwargs)
    return result, count[0]


# Off the one database thread, so that the reads of a process's readers and streams overlap
# instead of queueing behind each other and the streams' session writes.
read_counted = database_sync_to_async(counted, thread_sensitive=False)


@dataclass
class ReaderStats:
    queries: int = 0  # SQL statements of the reader's own reads
    reads_on_wake: int = 0  # reads after a channel-layer wake-up
    reads_periodic: int = 0  # reads after RECORDS_POLL_SECONDS without one
    events: int = 0  # events read and offered
    streams_max: int = 0
    overflows: int = 0  # times a stream's feed overflowed
    stream_queries: int = 0  # SQL statements of the streams' own reads (joining, after an overflow)
    head_start: int = 0  # the log head the reader started at: it offers the events after it


class LogReader:
    """Reads one organization's log for every stream of this process (see the module docstring)."""

    def __init__(self, organization_id: int) -> None:
        self.organization_id = organization_id
        self.feeds: set[Feed] = set()
        self.head: int | None = None  # every event up to here was read and offered
        self.wake = asyncio.Event()
        self.stats = ReaderStats()
        self.task = asyncio.create_task(self._run())

    def join(self, feed: Feed) -> None:
        self.feeds.add(feed)
        self.stats.streams_max = max(self.stats.streams_max, len(self.feeds))

    def leave(self, feed: Feed) -> None:
        self.feeds.discard(feed)
        self.stats.overflows += feed.overflows
        self.stats.stream_queries += feed.queries

    async def _run(self) -> None:
        layer: BaseChannelLayer | None = get_channel_layer()
        channel: str | None = None
        listener: asyncio.Task[None] | None = None
        woken = False
        beats = asyncio.create_task(self._heartbeats())
        try:
            while True:
                if layer is not None:
                    channel, listener = await self._subscribe(layer, channel, listener)
                try:
                    await self._read_all(woken=woken)
                except Exception:  # the next wake-up or period retries
                    log.exception("record log read failed")
                woken = await self._wait()
        finally:
            beats.cancel()
            if listener is not None:
                listener.cancel()
            if layer is not None and channel is not None:
                await asyncio.shield(layer.group_discard(org_group(self.organization_id), channel))
            stats = {"organization_id": self.organization_id, **asdict(self.stats)}
            log.info("records log reader stopped", extra=stats)

    async def _subscribe(
        self, layer: BaseChannelLayer, channel: str | None, listener: asyncio.Task[None] | None
    ) -> tuple[str | None, asyncio.Task[None] | None]:
        """Joins the organization's group, every round: that also renews the membership (the
        in-memory layer expires it) and retries after a channel-layer failure, during which the
        periodic reads go on."""
        try:
            if channel is None:
                channel = await layer.new_channel()
                listener = asyncio.create_task(self._listen(layer, channel))
            await layer.group_add(org_group(self.organization_id), channel)
        except Exception:
            log.warning("record wake-ups unavailable: reading the log periodically", exc_info=True)
        return channel, listener

    async def _heartbeats(self) -> None:
        """Has each stream that sent nothing for RECORDS_HEARTBEAT_SECONDS send a heartbeat;
        sleeps until the next stream falls due."""
        interval = settings.RECORDS_HEARTBEAT_SECONDS
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            next_due = now + interval
            for feed in self.feeds:
                due = feed.sent_at + interval
                if due <= now:
                    feed.beat()
                elif due < next_due:
                    next_due = due
            await asyncio.sleep(next_due - now)

    async def _wait(self) -> bool:
        """Until a wake-up (True) or RECORDS_POLL_SECONDS (False)."""
        try:
            async with asyncio.timeout(settings.RECORDS_POLL_SECONDS):
                await self.wake.wait()
            woken = True
        except TimeoutError:
            woken = False
        self.wake.clear()  # before reading: a wake-up during the read triggers another
        return woken

    async def _listen(self, layer: BaseChannelLayer, channel: str) -> None:
        while True:
            try:
                message = await layer.receive(channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # polling covers the gap; do not spin on a broken layer
                log.warning("record wake-up not received", exc_info=True)
                await asyncio.sleep(settings.RECORDS_POLL_SECONDS)
                continue
            seq = message.get("seq")
            # A wake-up for events already read (one read took a burst) costs nothing.
            if message.get("type") == "records.wake" and (
                self.head is None or not isinstance(seq, int) or seq > self.head
            ):
                self.wake.set()

    async def _read_all(self, *, woken: bool) -> None:
        if self.head is None:
            head, queries = await read_counted(log_head, organization_id=self.organization_id)
            self.head, self.stats.queries = head, self.stats.queries + queries
            self.stats.head_start = head
            # A stream that joined before may have caught up to less than this head, and no offer
            # will carry the events in between: it reads the log once more.
            for feed in self.feeds:
                feed.drop()
            return
        while True:
            entries, queries = await read_counted(
                log_read, organization_id=self.organization_id, after=self.head, limit=READ_ROWS
            )
            self.stats.queries += queries
            if woken:
                self.stats.reads_on_wake += 1
            else:
                self.stats.reads_periodic += 1
            if not entries:
                if not woken:
                    await self._check_head()
                return
            self._offer(entries)
            if len(entries) < READ_ROWS:
                return

    async def _check_head(self) -> None:
        """On an idle period: whether the log head moved back (a restored database). Then every
        stream reads the log itself; one positioned past the new head gets its `reset`."""
        head, queries = await read_counted(log_head, organization_id=self.organization_id)
        self.stats.queries += queries
        if self.head is not None and head < self.head:
            log.warning("record log head moved back", extra={"organization_id": self.organization_id, "head": head})
            self.head = head
            for feed in self.feeds:
                feed.drop()

    def _offer(self, entries: list[LogEntry]) -> None:
        assert self.head is not None
        # Not contiguous: the events in between were pruned; a stream positioned before them
        # sees the gap, reads the log itself and gets the `reset` that position calls for.
        after = self.head if entries[0].seq == self.head + 1 else entries[0].seq - 1
        events = tuple(
            LiveEvent(e.seq, e.patient_id, e.study_uid, sse(event=e.kind, seq=e.seq, data=e.body)) for e in entries
        )
        body = b"".join(e.frame for e in events)
        offer = Offer(after=after, up_to=entries[-1].seq, events=events, body=body)
        self.head = offer.up_to
        self.stats.events += len(events)
        for feed in self.feeds:
            feed.offer(offer)


_readers: dict[tuple[asyncio.AbstractEventLoop, int], LogReader] = {}


@asynccontextmanager
async def feed_open(organization_id: int) -> AsyncIterator[Feed]:
    """A feed of the organization's new events for one stream, while the block runs.

    Starts the organization's reader in this process (event loop) with its first stream and
    stops it with its last."""
    key = (asyncio.get_running_loop(), organization_id)
    reader = _readers.get(key)
    if reader is None:
        reader = _readers[key] = LogReader(organization_id)
    feed = Feed(settings.RECORDS_STREAM_BUFFER_EVENTS)
    reader.join(feed)
    try:
        yield feed
    finally:
        reader.leave(feed)
        if not reader.feeds and _readers.get(key) is reader:
            del _readers[key]
            reader.task.cancel()
