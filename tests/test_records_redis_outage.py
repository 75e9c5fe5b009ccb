"""Live record streams on two processes through a Redis outage (services run).

The channel layer only says the log grew; the log is the source of truth. With the processes'
Redis (a private one, never the machine's) stopped while their streams are open, no wake-up
arrives, and each process's log reader still reads the log every RECORDS_POLL_SECONDS (1 s in
the tests): the changes committed during the outage reach every open stream before Redis is
back, and every stream gets every event once and in order, before, during and after it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from records.selectors import log_head
from tests.support import live
from tests.support.faults import PrivateRedis, wait_until
from tests.support.records_support import Listener, index_study, reader_stats, rename_patient, wait_for
from tests.support.world import World

pytestmark = pytest.mark.services

STREAMS_PER_SERVER = 3
CHANGES = 20  # per phase: Redis up, down, up again


@pytest.fixture
def servers(child_env: dict[str, str], run_dir: Path, redis: PrivateRedis) -> Iterator[list[live.Server]]:
    env = {**child_env, "REDIS_URL": redis.url, "RECORDS_MAX_STREAMS_PER_KEY": "100", "LOG_LEVEL": "INFO"}
    started = [live.server(env, run_dir), live.server(env, run_dir)]
    yield started
    for srv in started:
        srv.stop()


@pytest.fixture
def wakes_through(redis: PrivateRedis) -> Iterator[None]:
    """This process's commits publish their wake-ups on the servers' (private) Redis."""
    layers: dict[str, Any] = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"] = [{"address": redis.url, "socket_connect_timeout": 2}]
    with override_settings(CHANNEL_LAYERS=layers):  # channels drops its layer instances on the change
        yield


def test_streams_of_two_processes_get_every_event_once_in_order_while_redis_is_down(
    servers: list[live.Server], redis: PrivateRedis, wakes_through: None, world: World
) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    head = log_head(organization_id=acme.pk)
    last = head + 3 * CHANGES
    listeners = [
        Listener(srv, world.bob.headers, position=head, last=last) for srv in servers for _ in range(STREAMS_PER_SERVER)
    ]

    def change(count: int) -> int:
        for n in range(count):
            rename_patient(acme, "P1", f"Doe^Jane{n}")
        return log_head(organization_id=acme.pk)

    def everyone_has(seq: int) -> bool:
        return all(client.ids and client.ids[-1] >= seq for client in listeners)

    with ThreadPoolExecutor(max_workers=len(listeners)) as pool:
        futures = [pool.submit(client.read) for client in listeners]
        for client in listeners:
            assert client.connected.wait(30)
        before = change(CHANGES)
        wait_until(lambda: everyone_has(before), what="the changes before the outage", timeout=30)

        redis.stop()
        during = change(CHANGES)
        # Before Redis is back: the readers' periodic reads of the log bring them.
        wait_until(lambda: everyone_has(during), what="the changes during the outage", timeout=30)
        assert not redis.answers()

        redis.start()
        assert change(CHANGES) == last
        results = [future.result(timeout=60) for future in futures]

    assert results == [list(range(head + 1, last + 1))] * len(listeners)
    for srv in servers:
        stats = wait_for(lambda srv=srv: reader_stats(srv, acme.pk), timeout=30)
        assert stats["reads_periodic"] >= 1  # reads that no wake-up asked for
