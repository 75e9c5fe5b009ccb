"""An ASGI request body as it arrives: paced, size-capped, handed to a worker thread.

Uvicorn stops reading the socket while the application has not asked for the next
`http.request` message, so waiting before `receive()` is how bandwidth back-pressure reaches
the client (its TCP window closes). Nothing here holds more than about FLUSH_BYTES bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from core.asgi import Receive
from core.errors import too_large

# Bytes gathered before one hand-off to the worker thread: large enough that the thread hop
# is rare next to the copy, small enough to keep memory flat per upload.
FLUSH_BYTES = 1024 * 1024


class ClientGone(Exception):
    """The client disconnected before the body ended."""


async def body_pieces(receive: Receive, *, limit: int, pace: Callable[[int], Awaitable[None]]) -> AsyncIterator[bytes]:
    """Yield the body's pieces; ApiError 413 as soon as it passes ``limit`` bytes."""
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        data: bytes = message.get("body", b"")
        received += len(data)
        if received > limit:
            raise too_large(limit)
        if data:
            yield data
        if not message.get("more_body", False):
            return
        await pace(len(data))


async def pump(pieces: AsyncIterator[bytes], feed: Callable[[bytes], None], *, eager: Callable[[], bool]) -> None:
    """Feed ``pieces`` to ``feed`` on a worker thread, one call in flight while the next FLUSH_BYTES
    bytes are read, so disk and hashing overlap the network.

    While ``eager()`` holds (the body's first bytes are not validated yet), every piece is fed
    and its verdict awaited before the next is read: a non-DICOM body is refused from its
    first bytes, not after the upload.
    """
    buf: list[bytes] = []
    size = 0
    pending: asyncio.Future[None] | None = None
    try:
        async for piece in pieces:
            buf.append(piece)
            size += len(piece)
            early = eager()
            if size < FLUSH_BYTES and not early:
                continue
            if pending is not None:
                await pending
            batch, buf, size = buf, [], 0
            pending = asyncio.ensure_future(asyncio.to_thread(_feed_joined, feed, batch))
            if early:
                await pending
                pending = None
        if pending is not None:
            await pending
            pending = None
        if buf:
            await asyncio.to_thread(_feed_joined, feed, buf)
    finally:
        if pending is not None:
            # Failing mid-body: the feed in flight must end before the caller cleans up.
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the first error is the one that propagates


def _feed_joined(feed: Callable[[bytes], None], pieces: list[bytes]) -> None:
    # Joined on the worker thread, not the event loop, which also reads the socket.
    feed(b"".join(pieces))  # one copy; none for a single piece
