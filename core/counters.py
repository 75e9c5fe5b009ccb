"""Counters shared by every server process, in the Django cache: add one atomically, the key
created with its expiry on first use.

The plain path is ``cache.add(key, 0, timeout)`` then ``cache.incr(key)``: three Redis round
trips (incr checks that the key exists first), ~0.4 ms on every API request. On Redis this
module sends the same two steps as one pipelined transaction (``SET key 0 EX ttl NX`` +
``INCR``) through Django's RedisCache client, ``cache._cache``, which is not public API: that is
the shortcut fenced here. Django's Redis cache stores integers unpickled, so the value stays
readable through the cache API. The client object is made once per connection pool: Django's
``get_client`` builds a new ``redis.Redis`` (its ~1,000 response callbacks) on every call, ~0.1 ms
of CPU per request. tests/unit/test_counters.py holds it equal to the plain path;
tests/unit/test_framework_fences.py fails when Django leaves the release it was reviewed for.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

_CLIENT = "_prizmed_counter_client"  # kept on Django's RedisCacheClient, beside its pools


def _client(cache: RedisCache) -> Any:
    inner = cache._cache  # noqa: SLF001 - the fenced shortcut (docstring)
    client = getattr(inner, _CLIENT, None)
    if client is None:
        client = inner.get_client(write=True)
        setattr(inner, _CLIENT, client)
    return client


def counter_incr(key: str, *, ttl_s: int) -> int:
    """Add one to ``key`` (created at 0 with a ``ttl_s`` expiry when absent); the new value."""
    cache = caches["default"]
    if isinstance(cache, RedisCache):
        pipe = _client(cache).pipeline(transaction=True)
        full_key = cache.make_and_validate_key(key)
        pipe.set(full_key, 0, ex=ttl_s, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    cache.add(key, 0, timeout=ttl_s)
    try:
        return int(cache.incr(key))
    except ValueError:  # evicted or expired between add and incr: start again
        cache.add(key, 1, timeout=ttl_s)
        return 1


def counter_decr(key: str) -> None:
    """Take one off ``key``; nothing when it has expired meanwhile (there is nothing to give back)."""
    try:
        caches["default"].decr(key)
    except ValueError:
        pass
