"""A process's listener for key changes from other processes outlives a channel layer outage
(accounts/key_watch.py): joining fails while Redis is down, is tried again every re-check
interval, and once joined a wake-up reaches the process's connections again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from channels.layers import BaseChannelLayer

from accounts import key_watch


class FlakyLayer(BaseChannelLayer):  # type: ignore[misc]  # channels ships no type hints
    """A layer that is unreachable for its first ``down`` joins, then delivers one message."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down, self.joins = down, 0
        self.message = asyncio.Event()

    async def new_channel(self, prefix: str = "specific.") -> str:
        self.joins += 1
        if self.joins <= self.down:
            raise ConnectionError("Redis is down")
        return "specific.one"

    async def group_add(self, group: str, channel: str) -> None:
        pass

    async def group_discard(self, group: str, channel: str) -> None:
        pass

    async def receive(self, channel: str) -> dict[str, Any]:
        await self.message.wait()
        self.message.clear()
        return {"type": "key.changed"}


def test_it_joins_again_after_an_outage_and_wakes_on_the_next_change(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.PRIZMED_KEY_RECHECK_SECONDS = 0.01

    async def scenario() -> FlakyLayer:
        layer = FlakyLayer(down=3)
        monkeypatch.setattr(key_watch, "get_channel_layer", lambda: layer)
        watches = key_watch._Watches()
        listener = asyncio.create_task(watches._listen())
        try:
            async with asyncio.timeout(5):
                while layer.joins <= layer.down:
                    await asyncio.sleep(0.01)
                layer.message.set()
                await watches.wake.wait()
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
        return layer

    layer = asyncio.run(scenario())
    assert layer.joins == layer.down + 1
