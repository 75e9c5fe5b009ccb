"""The cap on concurrent record streams per principal (an API key, or a dashboard user).

Counted in the Django cache (core/counters.py): Redis in production, so every server process
shares one count (INCR and DECR are atomic), process memory when embedded. A process that dies
holding slots cannot give them back; the count's TTL, refreshed by live streams, is the safety
net that lets the leak heal once the principal's streams go quiet.

The synchronous cache calls are deliberate: Django's async cache methods (`aincr`, ...) are a
read-modify-write for most backends, which loses counts when streams end at the same moment.
"""

from __future__ import annotations

import logging
import math
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache

from core.counters import counter_decr, counter_incr

log = logging.getLogger("prizmed.records")


def _key(principal: str) -> str:
    return f"records:streams:{principal}"


def _ttl_s() -> int:
    return max(60, 4 * settings.RECORDS_HEARTBEAT_SECONDS)


def _acquire(principal: str) -> bool:
    if counter_incr(_key(principal), ttl_s=_ttl_s()) > settings.RECORDS_MAX_STREAMS_PER_KEY:
        _release(principal)
        return False
    return True


def _release(principal: str) -> None:
    counter_decr(_key(principal))


def _refresh(principal: str) -> None:
    """Renews the count's TTL. A cache that is down (Redis) does not end the open streams: the
    log they read is in the database, and the next refresh renews the count."""
    try:
        cache.touch(_key(principal), _ttl_s())
    except Exception:
        log.warning("record stream count not refreshed", exc_info=True)


# principal → when a stream of this process last renewed its count (time.monotonic); one entry
# per principal that ever streamed here.
_renewed: dict[str, float] = {}


def slot_refresh_due(principal: str) -> bool:
    """Whether the principal's count is due for renewal by this process, claiming it if so: at
    most once per RECORDS_HEARTBEAT_SECONDS however many of its streams the process serves (each
    sends at least a heartbeat that often), rather than once per stream."""
    now = time.monotonic()
    if now - _renewed.get(principal, -math.inf) < settings.RECORDS_HEARTBEAT_SECONDS:
        return False
    _renewed[principal] = now
    return True


# Off the event loop, but not on the one thread that serves the database calls.
slot_acquire = sync_to_async(_acquire, thread_sensitive=False)
slot_release = sync_to_async(_release, thread_sensitive=False)
slot_refresh = sync_to_async(_refresh, thread_sensitive=False)
