"""The bodies of GET /records/stream: a Bundle page, an NDJSON export, and the SSE event stream.

The two streamed bodies are async generators: the consumer sends each chunk before asking for
the next, so at most one batch (BATCH_ROWS resources or events) is in memory per connection however
slow the client reads — uvicorn's send waits while its write buffer is full.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from channels.db import database_sync_to_async

from core.fhir import searchset
from records.fanout import Feed, read_counted
from records.request import StreamRequest
from records.selectors import (
    RecordFilter,
    SeqRange,
    events_after,
    log_head,
    resources_after,
    resources_count,
)
from records.services import session_advance, session_open
from records.sse import sse

BATCH_ROWS = 500
RETRY_MS = 2000  # the reconnection delay an EventSource should use
PATH = "/api/v2/records/stream"


def _link(base: str, flt: RecordFilter, count: int, since: int | None, cursor: int) -> str:
    params: dict[str, Any] = {"_count": count}
    if flt.patient is not None:
        params["patient"] = flt.patient
    if flt.study is not None:
        params["study"] = flt.study
    if since is not None:
        params["since"] = since
    if cursor:
        params["_cursor"] = cursor
    return f"{base}{PATH}?{urlencode(params)}"


def bundle_page(*, organization_id: int, req: StreamRequest) -> tuple[bytes, int]:
    """One searchset Bundle page (JSON) and the log head it was read at."""
    head = log_head(organization_id=organization_id)
    rows = resources_after(
        organization_id=organization_id,
        after_id=req.cursor,
        flt=req.flt,
        limit=req.count + 1,  # one more than the page says whether a next page exists
        seq=SeqRange(after=req.position),
    )
    page = rows[: req.count]
    links = [{"relation": "self", "url": _link(req.base, req.flt, req.count, req.position, req.cursor)}]
    if len(rows) > req.count:
        links.append({"relation": "next", "url": _link(req.base, req.flt, req.count, req.position, page[-1].id)})
    bundle = searchset(
        resources=[json.loads(row.body) for row in page],
        links=links,
        total=resources_count(organization_id=organization_id, flt=req.flt, seq=SeqRange(after=req.position)),
    )
    return json.dumps(bundle, separators=(",", ":")).encode(), head


async def ndjson_lines(*, organization_id: int, req: StreamRequest) -> AsyncIterator[bytes]:
    """Every current resource (changed after the position, if one is given), one per line."""
    after = 0
    while True:
        rows = await database_sync_to_async(resources_after)(
            organization_id=organization_id,
            after_id=after,
            flt=req.flt,
            limit=BATCH_ROWS,
            seq=SeqRange(after=req.position),
        )
        if not rows:
            return
        yield "".join(f"{row.body}\n" for row in rows).encode()
        after = rows[-1].id


@dataclass
class SseStream:
    """One SSE connection: the snapshot (unless resuming), then every event after its position.

    Live events come from `feed`, filled by the process's one log reader of the organization
    (records/fanout.py). The stream reads the log itself only to catch up: when it starts, when
    an offer does not follow on from its position, and when its feed overflowed (a slow client).
    """

    organization_id: int
    api_key_id: int | None
    req: StreamRequest
    feed: Feed
    position: int = 0

    async def frames(self) -> AsyncIterator[bytes]:
        yield f"retry: {RETRY_MS}\n\n".encode()
        start = self.req.position
        if self.req.session_id is not None:
            stored, created = await database_sync_to_async(session_open)(
                organization_id=self.organization_id, session_id=self.req.session_id, api_key_id=self.api_key_id
            )
            if start is None and not created:
                start = stored
        if start is None:
            async for chunk in self._snapshot(reason=None):
                yield chunk
        else:
            self.position = start
        async for chunk in self._live():
            yield chunk

    async def _live(self) -> AsyncIterator[bytes]:
        """Every event after the position, as the reader offers them; heartbeats while idle (the
        reader says when one is due: records/fanout.py).

        This loop runs once per event for every stream of the process: it arms no timer of its
        own and awaits nothing but the feed, the client and the session's position write."""
        feed, clock = self.feed, asyncio.get_running_loop().time
        behind = True  # the feed holds only what the reader reads from now on
        while True:
            if behind:
                async for chunk in self._catch_up():
                    yield chunk
                    feed.sent_at = clock()
            chunk, behind, up_to = self._take()
            if chunk:
                yield chunk
                feed.sent_at = clock()
            if up_to != self.position:
                await self._advance(up_to)
            if behind:
                continue
            if feed.beat_due:
                feed.beat_due = False
                if not chunk:
                    yield b": heartbeat\n\n"  # a comment: keeps proxies from closing an idle stream
                    feed.sent_at = clock()
            if not feed.ready.is_set():
                await feed.ready.wait()

    def _take(self) -> tuple[bytes, bool, int]:
        """The frames of the offered events after the position that match the filters, whether
        the stream must read the log itself next (the feed overflowed, or an offer starts after
        the position), and the position those frames take it to."""
        offers = self.feed.take()
        if offers is None:
            return b"", True, self.position
        frames: list[bytes] = []
        position = self.position
        flt = self.req.flt
        for offer in offers:
            if offer.up_to <= position:
                continue
            if offer.after > position:
                return b"".join(frames), True, position
            if offer.after == position and flt.everything:
                frames.append(offer.body)  # the bytes every such stream sends: no copy
            else:
                frames.extend(
                    e.frame
                    for e in offer.events
                    if e.seq > position and flt.matches(patient_id=e.patient_id, study_uid=e.study_uid)
                )
            position = offer.up_to
        return frames[0] if len(frames) == 1 else b"".join(frames), False, position

    async def _snapshot(self, *, reason: str | None) -> AsyncIterator[bytes]:
        """The current resources as of the log head, then `snapshot-end` carrying the head as id.

        A resource changed after the head is left out: its event (after the head) follows live."""
        head = await database_sync_to_async(log_head)(organization_id=self.organization_id)
        if reason is not None:
            yield sse(event="reset", data=json.dumps({"reason": reason, "seq": head}))
        after = count = 0
        while True:
            rows = await database_sync_to_async(resources_after)(
                organization_id=self.organization_id,
                after_id=after,
                flt=self.req.flt,
                limit=BATCH_ROWS,
                seq=SeqRange(up_to=head),
            )
            if not rows:
                break
            yield b"".join(sse(event=row.kind, data=row.body) for row in rows)
            after, count = rows[-1].id, count + len(rows)
        yield sse(event="snapshot-end", seq=head, data=json.dumps({"seq": head, "resources": count}))
        await self._advance(head)

    async def _catch_up(self) -> AsyncIterator[bytes]:
        while True:
            batch, queries = await read_counted(
                events_after,
                organization_id=self.organization_id,
                position=self.position,
                flt=self.req.flt,
                limit=BATCH_ROWS,
            )
            self.feed.queries += queries
            if batch.expired:
                async for chunk in self._snapshot(reason="position-expired"):
                    yield chunk
                continue
            if batch.events:
                yield b"".join(sse(event=e.kind, seq=e.seq, data=e.body) for e in batch.events)
            if batch.scanned_to != self.position:
                await self._advance(batch.scanned_to)
            if len(batch.events) < BATCH_ROWS:
                return

    async def _advance(self, seq: int) -> None:
        self.position = seq
        if self.req.session_id is not None:
            # Shielded: a client that reads a batch and disconnects at once cancels this stream
            # while the write of the position it read up to may still be queued for the database
            # thread; cancelled there, the session would resume one batch early.
            await asyncio.shield(
                database_sync_to_async(session_advance)(
                    organization_id=self.organization_id, session_id=self.req.session_id, seq=seq
                )
            )
