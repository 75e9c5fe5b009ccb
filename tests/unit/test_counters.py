"""core.counters: the pipelined Redis counter behaves as cache.add + cache.incr does."""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings
from django.core.cache import cache

from core.counters import counter_decr, counter_incr


def _keys() -> tuple[str, str]:
    tag = uuid.uuid4().hex
    return f"test:counter:{tag}", f"test:plain:{tag}"


def test_it_counts_from_one_and_reads_back_through_the_cache() -> None:
    fenced, plain = _keys()
    cache.add(plain, 0, timeout=60)
    for expected in (1, 2, 3):
        assert counter_incr(fenced, ttl_s=60) == expected == cache.incr(plain)
    assert cache.get(fenced) == cache.get(plain) == 3
    counter_decr(fenced)
    cache.decr(plain)
    assert cache.get(fenced) == cache.get(plain) == 2


def test_it_gives_nothing_back_once_the_count_has_expired() -> None:
    fenced, _ = _keys()
    counter_decr(fenced)  # no error, no key
    assert cache.get(fenced) is None


@pytest.mark.services  # the shortcut itself: Django's RedisCache client
def test_it_sets_the_expiry_the_plain_path_sets_on_redis_only_when_creating() -> None:
    fenced, plain = _keys()
    counter_incr(fenced, ttl_s=120)
    cache.add(plain, 0, timeout=120)
    cache.incr(plain)
    client = redis.Redis.from_url(settings.REDIS_URL)
    fenced_ttl, plain_ttl = client.ttl(cache.make_key(fenced)), client.ttl(cache.make_key(plain))
    assert 110 < fenced_ttl <= 120 and 110 < plain_ttl <= 120
    counter_incr(fenced, ttl_s=5)  # an existing count keeps its expiry, as cache.add leaves it
    assert client.ttl(cache.make_key(fenced)) > 100
    assert client.get(cache.make_key(fenced)) == b"2"  # stored as a plain integer, as Django stores it


@pytest.mark.services  # the script on Redis: one count from the event loop and from threads alike
def test_it_counts_on_the_event_loop_as_off_it() -> None:
    import asyncio

    from core.counters import counter_incr_async

    fenced, _ = _keys()
    assert counter_incr(fenced, ttl_s=60) == 1
    assert asyncio.run(counter_incr_async(fenced, ttl_s=60)) == 2
    assert counter_incr(fenced, ttl_s=60) == 3
    assert cache.get(fenced) == 3
    assert 50 < redis.Redis.from_url(settings.REDIS_URL).ttl(cache.make_key(fenced)) <= 60
