"""Waiting for an organization's record log to grow: how a request that waits on indexing
(STOW-RS, dicomweb/stow.py) hears at once that a batch committed, instead of finding out at
its next poll.

Every indexing transaction appends record events (records_append) and, on commit, sends the
organization's channel-layer group a `records.wake` (records/services.py); a waiter joins that
group for as long as it waits. A wake-up only says "look again": the waiter re-reads what it
waits for, and keeps a poll for what sends none (an upload whose every instance was rejected,
a channel layer that is down).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from channels.layers import BaseChannelLayer, get_channel_layer

from records.services import org_group, stream_loop_register

log = logging.getLogger("prizmed.records.growth")


@asynccontextmanager
async def log_growth(organization_id: int) -> AsyncIterator[asyncio.Event]:
    """An Event set whenever the organization's record log grows, in any process, while the
    context is open; the holder clears it before it looks again. Never set without a channel
    layer or while it fails: wait on it with a timeout."""
    grown = asyncio.Event()
    layer: BaseChannelLayer | None = get_channel_layer()
    if layer is None:
        yield grown
        return
    # Embedded mode: wake-ups sent by the in-process indexing thread are handed to this loop.
    stream_loop_register(asyncio.get_running_loop())
    channel: str | None = None
    listener: asyncio.Task[None] | None = None
    try:
        channel = await layer.new_channel()
        await layer.group_add(org_group(organization_id), channel)
        listener = asyncio.create_task(_listen(layer, channel, grown))
    except Exception:  # the holder's poll covers it
        log.warning("record wake-ups unavailable: polling", exc_info=True)
    try:
        yield grown
    finally:
        if listener is not None:
            listener.cancel()
        if channel is not None:
            try:
                await asyncio.shield(layer.group_discard(org_group(organization_id), channel))
            except Exception:  # the membership expires on its own (the layer's group expiry)
                log.warning("record wake-up group not left", exc_info=True)


async def _listen(layer: BaseChannelLayer, channel: str, grown: asyncio.Event) -> None:
    try:
        while True:
            message = await layer.receive(channel)
            if message.get("type") == "records.wake":
                grown.set()
    except asyncio.CancelledError:
        raise
    except Exception:  # the holder's poll covers the rest of its wait
        log.warning("record wake-up not received", exc_info=True)
