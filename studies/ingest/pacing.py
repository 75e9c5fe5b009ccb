"""Upload bandwidth per organization: back-pressure, never an error (API.md, Plans and limits).

Every piece of an upload books the next free slot on its organization's timeline: a piece of
n bytes occupies n·8/bps seconds, starting when the previous booking ends (or now, when the
line is idle). The receiver waits until its slot starts before it reads the next piece, so
the client's TCP window closes and all the organization's uploads together move at the plan's
rate. With REDIS_URL the timeline is one Redis key shared by every server process (booked
atomically by a Lua script); without it, one dict in this process.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis
from django.conf import settings
from redis.exceptions import RedisError

log = logging.getLogger("prizmed.pacing")

# KEYS[1]: the organization's timeline; ARGV: now (epoch s), the piece's duration (s).
# Returns the wait as a string: Redis would truncate a Lua number to an integer.
_BOOK = """
local now = tonumber(ARGV[1])
local start = math.max(now, tonumber(redis.call('GET', KEYS[1]) or '0'))
local finish = start + tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.6f', finish), 'PX', math.ceil((finish - now) * 1000) + 60000)
return string.format('%.6f', start - now)
"""


class LocalTimeline:
    """The booking arithmetic, in process memory (also the fallback when Redis fails)."""

    def __init__(self) -> None:
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def book(self, key: str, *, seconds: float, now: float) -> float:
        """Book ``seconds`` of line time; return how long to wait for the slot to start."""
        with self._lock:
            start = max(now, self._next.get(key, 0.0))
            self._next[key] = start + seconds
            if len(self._next) > 10_000:  # forget finished timelines of long-gone uploads
                self._next = {k: v for k, v in self._next.items() if v > now}
            return start - now


class Pacer:
    def __init__(self, *, redis_url: str, namespace: str, clock: Callable[[], float] = time.time) -> None:
        self._redis_url = redis_url
        self._namespace = namespace
        self._clock = clock
        self.local = LocalTimeline()
        # One client per event loop: redis.asyncio connections belong to the loop that made them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    async def delay(self, *, organization_id: int, bps: int, nbytes: int) -> float:
        """Book ``nbytes`` at ``bps`` bits/s for the organization; the wait before reading on."""
        key = f"{self._namespace}:pace:{organization_id}"
        seconds, now = nbytes * 8 / bps, self._clock()
        if not self._redis_url:
            return self.local.book(key, seconds=seconds, now=now)
        try:
            script = self._script()
            return float(await script(keys=[key], args=[repr(now), repr(seconds)]))
        except RedisError:
            # Redis down: pace this process alone rather than fail an upload (never an error).
            log.warning("pacing falls back to this process: Redis unavailable", exc_info=True)
            return self.local.book(key, seconds=seconds, now=now)

    async def pace(self, *, organization_id: int, bps: int | None, nbytes: int) -> None:
        """Wait for the organization's line; no plan limit (Enterprise) never waits."""
        if not bps or nbytes <= 0:
            return
        wait = await self.delay(organization_id=organization_id, bps=bps, nbytes=nbytes)
        if wait > 0:
            await asyncio.sleep(wait)

    def _script(self) -> Any:
        loop = asyncio.get_running_loop()
        script = self._clients.get(loop)
        if script is None:
            client = aioredis.Redis.from_url(self._redis_url)
            script = self._clients[loop] = client.register_script(_BOOK)
        return script


_pacer: Pacer | None = None


def pacer() -> Pacer:
    global _pacer
    if _pacer is None:
        _pacer = Pacer(redis_url=settings.REDIS_URL, namespace=settings.NAMESPACE)
    return _pacer
