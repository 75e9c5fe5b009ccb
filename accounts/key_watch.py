"""Revocation and expiry end a key's open connections within seconds (issue 10 item 10).

A request is authenticated once, when it starts; an SSE stream or a WebSocket may then stay open
for hours. ``serve_while_key_active`` wraps such a connection (ApiKeyMiddleware applies it to
every WebSocket once accepted and every `text/event-stream` response once started): when its key
is revoked, expires or is deleted, the client gets the reason — a last SSE event
`access-ended`, or on a WebSocket the protocol's error frame and close code 4401 — and the
consumer behind sees its client leave (`http.disconnect` / `websocket.disconnect`), so it cleans
up exactly as for a client that went away. Consumers need no code of their own for this.

Each process re-reads the state of every key it has open connections for in one query every
PRIZMED_KEY_RECHECK_SECONDS (``key_access_ended``): a revocation made anywhere (dashboard,
another process, the database itself), a deletion and an expiry time reached are all seen
within that interval. A revocation through ``accounts.services.key_revoke`` also wakes that
check at once in every process (``key_access_changed``: in-process, and over the channel
layer), so it usually takes effect in milliseconds; losing that message costs one interval.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.utils import timezone

from accounts.key_cache import key_cache_clear
from accounts.models import APIKey
from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import ApiError
from core.headers import header
from core.problems import problem_body

log = logging.getLogger("prizmed.auth")
ENDED_DETAIL = {
    "key-revoked": "The API key was revoked.",
    "key-expired": "The API key has expired.",
    "key-deleted": "The API key no longer exists.",
}
SSE_EVENT = "access-ended"
KEYS_GROUP = "accounts.keys"  # every process with open watched connections listens here
WS_CLOSE_CODE = 4401  # the WebSocket protocol's 4000 + HTTP status (studies/ingest/websocket_consumer.py)


def key_access_ended(key_ids: Collection[int]) -> dict[int, str]:
    """Of these key ids, those that no longer grant access, each with why: `key-revoked`,
    `key-expired` or `key-deleted` (the reasons of ENDED_DETAIL). One query."""
    now = timezone.now()
    ended = {key_id: "key-deleted" for key_id in key_ids}
    for key_id, revoked_at, expires_at in APIKey.objects.filter(pk__in=key_ids).values_list(
        "pk", "revoked_at", "expires_at"
    ):
        if revoked_at is not None:
            ended[key_id] = "key-revoked"
        elif expires_at is not None and expires_at <= now:
            ended[key_id] = "key-expired"
        else:
            del ended[key_id]
    return ended


_key_access_ended = database_sync_to_async(key_access_ended)


def key_access_changed() -> None:
    """Have every process re-check its open connections' keys now, not at the next interval:
    called once a revocation has committed. Losing this costs at most one interval. New
    requests stop at once too: the verified keys this process keeps are forgotten."""
    key_cache_clear()
    for loop, watches in list(_watches.items()):  # this process (embedded: the only one)
        if not loop.is_closed():
            loop.call_soon_threadsafe(watches.wake.set)
    layer = get_channel_layer()
    if layer is None or isinstance(layer, InMemoryChannelLayer):
        return  # one process: done above
    try:
        async_to_sync(layer.group_send)(KEYS_GROUP, {"type": "keys.changed"})
    except Exception:  # the periodic re-check still comes
        log.warning("key change not published", exc_info=True)


async def _group_leave(layer: Any, channel: str) -> None:
    try:
        await layer.group_discard(KEYS_GROUP, channel)
    except Exception:  # the layer is gone: the group membership expires with it
        log.debug("leaving the key-change group failed", exc_info=True)


@dataclass
class _Watches:
    """The open connections of one event loop (one server process), by key id."""

    waiting: dict[int, set[asyncio.Future[str]]] = field(default_factory=dict)
    poller: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # re-check now (key_access_changed)

    def watch(self, key_id: int) -> asyncio.Future[str]:
        """A future that resolves to the reason once the key no longer grants access."""
        ended: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.waiting.setdefault(key_id, set()).add(ended)
        if self.poller is None or self.poller.done():
            self.poller = asyncio.create_task(self._poll())
        return ended

    def unwatch(self, key_id: int, ended: asyncio.Future[str]) -> None:
        futures = self.waiting.get(key_id, set())
        futures.discard(ended)
        if not futures:
            self.waiting.pop(key_id, None)

    async def _poll(self) -> None:
        listener = asyncio.create_task(self._listen())
        try:
            while self.waiting:
                try:
                    async with asyncio.timeout(settings.PRIZMED_KEY_RECHECK_SECONDS):
                        await self.wake.wait()
                except TimeoutError:
                    pass
                self.wake.clear()
                await self._check()
        finally:
            listener.cancel()

    async def _listen(self) -> None:
        """Wake-ups from other processes, through the channel layer, while connections are open.
        With the layer unreachable (Redis down) the periodic re-check still comes, and joining
        is tried again every re-check interval, so wake-ups resume when it is back."""
        layer = get_channel_layer()
        if layer is None or isinstance(layer, InMemoryChannelLayer):
            return
        while True:
            channel: str | None = None
            try:
                channel = await layer.new_channel()
                await layer.group_add(KEYS_GROUP, channel)
                while True:
                    await layer.receive(channel)
                    key_cache_clear()  # a revocation elsewhere: new requests look their key up again
                    self.wake.set()
            except asyncio.CancelledError:
                if channel is not None:
                    await asyncio.shield(_group_leave(layer, channel))
                raise
            except Exception:
                log.warning("key change wake-ups unavailable; joining again shortly", exc_info=True)
                key_cache_clear()  # a revocation may have gone unheard meanwhile
                await asyncio.sleep(settings.PRIZMED_KEY_RECHECK_SECONDS)

    async def _check(self) -> None:
        if self.waiting:
            try:
                ended = await _key_access_ended(list(self.waiting))
            except Exception:  # a database blip: the next round checks again
                log.warning("open connections' key re-check failed", exc_info=True)
                return
            for key_id, reason in ended.items():
                for future in self.waiting.pop(key_id, set()):
                    if not future.done():
                        future.set_result(reason)


_watches: dict[asyncio.AbstractEventLoop, _Watches] = {}


def _loop_watches() -> _Watches:
    loop = asyncio.get_running_loop()
    for stale in [other for other in _watches if other.is_closed()]:
        del _watches[stale]
    return _watches.setdefault(loop, _Watches())


def _is_event_stream(message: Message) -> bool:
    content_type = header({"headers": message.get("headers", [])}, b"content-type") or ""
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


async def serve_while_key_active(app: ASGIApp, scope: Scope, receive: Receive, send: Send, key: APIKey) -> None:
    """Run `app` for a connection authenticated by `key`, ending it if the key stops granting
    access while it is open (see the module docstring)."""
    connection = _Connection(scope["type"] == "websocket", receive, send, key.pk, _loop_watches())
    try:
        await app(scope, connection.receive, connection.send)
    finally:
        connection.unwatch()


class _Connection:
    """One watched connection: the app's receive and send, with the ending spliced in."""

    def __init__(self, websocket: bool, receive: Receive, send: Send, key_id: int, watches: _Watches) -> None:
        self.websocket = websocket
        self._receive, self._send = receive, send
        self.key_id, self.watches = key_id, watches
        self.ended: asyncio.Future[str] | None = None
        self.gone = asyncio.Event()  # ended here: the app now sees its client leave
        self.closed = False  # the client has had its last message: the app's later ones are dropped
        self.lock = asyncio.Lock()  # the app's messages and the ending ones never interleave
        self.ending: set[asyncio.Task[None]] = set()  # references, so a task is not collected mid-way

    async def send(self, message: Message) -> None:
        async with self.lock:
            if self.closed:
                return
            if message["type"] in ("websocket.close", "http.response.body") and not message.get("more_body"):
                self.closed = True  # the app ended the connection itself
            await self._send(message)
        starts_long = message["type"] == "websocket.accept" or (
            message["type"] == "http.response.start" and _is_event_stream(message)
        )
        if starts_long and self.ended is None:
            self.ended = self.watches.watch(self.key_id)
            self.ended.add_done_callback(self._on_ended)

    async def receive(self) -> Message:
        if not self.gone.is_set():
            incoming = asyncio.ensure_future(self._receive())
            leaving = asyncio.ensure_future(self.gone.wait())
            try:
                await asyncio.wait({incoming, leaving}, return_when=asyncio.FIRST_COMPLETED)
            except asyncio.CancelledError:  # the app stopped waiting (asyncio.wait leaves both running)
                incoming.cancel()
                leaving.cancel()
                raise
            if incoming.done():
                leaving.cancel()
                return incoming.result()
            incoming.cancel()
        if self.websocket:
            return {"type": "websocket.disconnect", "code": WS_CLOSE_CODE}
        return {"type": "http.disconnect"}

    def unwatch(self) -> None:
        if self.ended is not None:
            self.ended.remove_done_callback(self._on_ended)
            self.watches.unwatch(self.key_id, self.ended)

    def _on_ended(self, future: asyncio.Future[str]) -> None:
        if not future.cancelled():
            task = asyncio.ensure_future(self._end(future.result()))
            self.ending.add(task)
            task.add_done_callback(self.ending.discard)

    async def _end(self, reason: str) -> None:
        problem = problem_body(ApiError(401, ENDED_DETAIL[reason], slug=reason))
        async with self.lock:
            if self.closed:
                return
            self.closed = True
            try:
                if self.websocket:
                    await self._send(
                        {"type": "websocket.send", "text": json.dumps({"type": "error", "problem": problem})}
                    )
                    await self._send({"type": "websocket.close", "code": WS_CLOSE_CODE, "reason": reason})
                else:
                    frame = f"event: {SSE_EVENT}\ndata: {json.dumps(problem)}\n\n".encode()
                    await self._send({"type": "http.response.body", "body": frame, "more_body": True})
                    await self._send({"type": "http.response.body", "body": b"", "more_body": False})
            except OSError:  # the client left meanwhile: nothing more to tell it
                pass
        self.gone.set()
