"""records.services._wake from sync code (a Celery worker's indexing) reaches the live streams
of every process through the Redis channel layer, on one event loop of its own."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import get_channel_layer

from records.services import _wake, _wake_loop, org_group


@pytest.mark.services  # the Redis channel layer
def test_a_wake_up_sent_from_sync_code_reaches_a_subscriber() -> None:
    async def listen() -> list[dict[str, object]]:
        layer = get_channel_layer()
        assert layer is not None
        channel = await layer.new_channel()
        await layer.group_add(org_group(424242), channel)
        await asyncio.to_thread(_wake, 424242, 5)
        await asyncio.to_thread(_wake, 424242, 6)
        return [await asyncio.wait_for(layer.receive(channel), 10) for _ in range(2)]

    got = sorted(asyncio.run(listen()), key=lambda message: str(message["seq"]))
    assert got == [{"type": "records.wake", "seq": 5}, {"type": "records.wake", "seq": 6}]
    assert _wake_loop() is _wake_loop()  # one loop (and Redis connection) for every wake-up
