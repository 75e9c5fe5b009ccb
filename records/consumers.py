"""GET /api/v2/records/stream (API.md §6), and the dashboard's live view of the same stream.

One consumer serves the three media types. The response runs in its own task so that the
consumer keeps dispatching while it streams: `http.disconnect` cancels the task, leaves the
organization's log reader (records/fanout.py) and gives the slot back at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from channels.consumer import AsyncConsumer
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from django.conf import settings

from accounts.models import APIKey, Organization
from core.errors import ApiError, method_not_allowed, not_found, server_failure, unauthorized
from core.fhir import FHIR_JSON, FHIR_NDJSON
from core.headers import NO_STORE
from core.problems import send_problem
from records import slots
from records.fanout import feed_open
from records.request import StreamRequest, stream_request_parse
from records.selectors import log_head
from records.services import stream_loop_register
from records.streaming import SseStream, bundle_page, ndjson_lines

log = logging.getLogger("prizmed.records")


@dataclass(frozen=True)
class Grant:
    organization_id: int
    api_key_id: int | None
    principal: str  # whose concurrent-stream cap this connection counts against


class RecordStreamConsumer(AsyncConsumer):  # type: ignore[misc]  # channels ships no type hints
    # No channel of its own: wake-ups reach the process's log reader (records/fanout.py), not each
    # stream, which spares a channel-layer subscription (a Redis SUBSCRIBE) per connection.
    channel_layer_alias = None

    def __init__(self) -> None:
        self.task: asyncio.Task[None] | None = None
        self.started = False  # the response head is sent
        self.finished = False  # the response body is complete

    async def authorize(self) -> Grant | None:
        """The caller's organization, or None after answering with a problem."""
        key: APIKey | None = self.scope.get("api_key")
        if key is None:
            await send_problem(self.send, unauthorized())
            return None
        return Grant(organization_id=key.organization_id, api_key_id=key.pk, principal=f"key:{key.pk}")

    async def http_request(self, message: dict[str, Any]) -> None:
        if message.get("more_body") or self.task is not None:
            return  # a GET body is ignored
        if self.scope["method"] != "GET":
            await send_problem(self.send, method_not_allowed("GET"))
            return
        self.task = asyncio.create_task(self._respond())

    async def http_disconnect(self, message: dict[str, Any]) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        raise StopConsumer()

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        elif not message.get("more_body"):
            self.finished = True
        await super().send(message)

    async def _respond(self) -> None:
        try:
            await self._serve()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("record stream failed")
            if not self.started:
                await send_problem(self.send, server_failure())
        finally:
            if self.started and not self.finished:
                await asyncio.shield(self.send({"type": "http.response.body", "body": b"", "more_body": False}))

    async def _serve(self) -> None:
        grant = await self.authorize()
        if grant is None:
            return
        try:
            req = stream_request_parse(self.scope)
        except ApiError as exc:
            await send_problem(self.send, exc)
            return
        echo = [(b"x-record-id", req.record_id.encode())] if req.record_id else []
        if req.media_type == FHIR_JSON:
            body, head = await database_sync_to_async(bundle_page)(organization_id=grant.organization_id, req=req)
            await self._start(FHIR_JSON, [*echo, (b"x-record-seq", str(head).encode())])
            await self.send({"type": "http.response.body", "body": body})
            return
        if not await slots.slot_acquire(grant.principal):
            detail = f"At most {settings.RECORDS_MAX_STREAMS_PER_KEY} concurrent record streams per key."
            await send_problem(
                self.send, ApiError(429, detail, slug="too-many-streams", headers=[("Retry-After", "5")])
            )
            return
        try:
            if req.media_type == FHIR_NDJSON:
                head = await database_sync_to_async(log_head)(organization_id=grant.organization_id)
                await self._start(FHIR_NDJSON, [*echo, (b"x-record-seq", str(head).encode())])
                await self._stream(grant, ndjson_lines(organization_id=grant.organization_id, req=req))
            else:
                await self._sse(grant, req, echo)
        finally:
            await asyncio.shield(slots.slot_release(grant.principal))

    async def _sse(self, grant: Grant, req: StreamRequest, echo: list[tuple[bytes, bytes]]) -> None:
        stream_loop_register(asyncio.get_running_loop())
        # The process's one reader of the organization's log feeds this stream (and every other).
        async with feed_open(grant.organization_id) as feed:
            await self._start(
                "text/event-stream",
                [*echo, NO_STORE, (b"x-accel-buffering", b"no")],
            )
            stream = SseStream(organization_id=grant.organization_id, api_key_id=grant.api_key_id, req=req, feed=feed)
            await self._stream(grant, stream.frames())

    async def _start(self, content_type: str, headers: list[tuple[bytes, bytes]]) -> None:
        headers = [(b"content-type", content_type.encode()), *headers]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})

    async def _stream(self, grant: Grant, chunks: AsyncIterator[bytes]) -> None:
        # Once per event for every stream: the chunks go to the server's send directly (they
        # change neither `started` nor `finished`), and the slot is renewed once per principal
        # and process, not by each stream. The renewal comes before the send: between a sent
        # chunk and the generator's next step (which records an X-Record-Stream session's
        # position) nothing may await, or a client that disconnects right after reading would
        # cancel the stream there and resume one chunk early.
        send = self.base_send
        async for chunk in chunks:
            if slots.slot_refresh_due(grant.principal):
                await slots.slot_refresh(grant.principal)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})


class LiveActivityConsumer(RecordStreamConsumer):
    """The dashboard's "Live activity" page: the same SSE stream, authorised by a staff session
    (cookies; an EventSource cannot send Authorization) and the organization it names."""

    async def authorize(self) -> Grant | None:
        user = self.scope.get("user")
        allowed = user is not None and user.is_active and user.is_staff
        if not allowed or not await sync_to_async(user.has_perm)("records.view_recordevent"):
            await send_problem(self.send, ApiError(403, "Staff with the view record event permission only."))
            return None
        query = parse_qsl(self.scope.get("query_string", b"").decode("utf-8", "replace"))
        slug = dict(query).get("organization", "")
        organization_id = await Organization.objects.filter(slug=slug).values_list("pk", flat=True).afirst()
        if organization_id is None:
            await send_problem(self.send, not_found("No such organization."))
            return None
        return Grant(organization_id=organization_id, api_key_id=None, principal=f"user:{user.pk}")
