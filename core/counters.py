"""Counters shared by every server process, in the Django cache: add one atomically, the key
created with its expiry on first use.

The plain path is ``cache.add(key, 0, timeout)`` then ``cache.incr(key)``: three Redis round
trips (incr checks that the key exists first), ~0.4 ms on every API request. On Redis this
module runs the same two steps (``SET key 0 EX ttl NX``, then ``INCR``) as one script, atomic as
the MULTI/EXEC transaction it replaces and one command instead of four (~0.1 ms less client CPU a
request, docs/benchmarks.md), through Django's RedisCache client, ``cache._cache``, which is not
public API: that is the shortcut fenced here. Django's Redis cache stores integers unpickled, so
the value stays readable through the cache API. The script (and the client it holds) is made once
per connection pool: Django's ``get_client`` builds a new ``redis.Redis`` (its ~1,000 response
callbacks) on every call, ~0.1 ms of CPU per request. tests/unit/test_counters.py holds it equal to the plain path;
tests/unit/test_framework_fences.py fails when Django leaves the release it was reviewed for.
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from redis import asyncio as aioredis

_SCRIPT = "_prizmed_counter_script"  # kept on Django's RedisCacheClient, beside its pools
# EVALSHA, loaded again by redis-py when a restarted server has forgotten it (NOSCRIPT).
_INCR = "redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')\nreturn redis.call('INCR', KEYS[1])"


def _script(cache: RedisCache) -> Any:
    inner = cache._cache  # noqa: SLF001 - the fenced shortcut (docstring)
    script = getattr(inner, _SCRIPT, None)
    if script is None:
        script = inner.get_client(write=True).register_script(_INCR)
        setattr(inner, _SCRIPT, script)
    return script


def counter_incr(key: str, *, ttl_s: int) -> int:
    """Add one to ``key`` (created at 0 with a ``ttl_s`` expiry when absent); the new value."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        return int(_script(cache)(keys=[cache.make_and_validate_key(key)], args=[ttl_s]))
    cache.add(key, 0, timeout=ttl_s)
    try:
        return int(cache.incr(key))
    except ValueError:  # evicted or expired between add and incr: start again
        cache.add(key, 1, timeout=ttl_s)
        return 1


_async_scripts: dict[asyncio.AbstractEventLoop, Any] = {}  # an asyncio client is bound to its loop


async def counter_incr_async(key: str, *, ttl_s: int) -> int:
    """``counter_incr`` on the event loop, for the ASGI path: the same pipelined steps on the
    same Redis key through an asyncio client (no thread hop); process memory needs no I/O."""
    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return counter_incr(key, ttl_s=ttl_s)
    loop = asyncio.get_running_loop()
    script = _async_scripts.get(loop)
    if script is None:
        for closed in [other for other in _async_scripts if other.is_closed()]:
            del _async_scripts[closed]
        config: dict[str, Any] = settings.CACHES["default"]  # the cache's own server and timeouts
        client = aioredis.Redis.from_url(config["LOCATION"], **config.get("OPTIONS", {}))
        script = _async_scripts[loop] = client.register_script(_INCR)
    return int(await script(keys=[cache.make_and_validate_key(key)], args=[ttl_s]))


def counter_decr(key: str) -> None:
    """Take one off ``key``; nothing when it has expired meanwhile (there is nothing to give back)."""
    try:
        caches["default"].decr(key)
    except ValueError:
        pass
