"""Many SSE streams on two uvicorn processes sharing PostgreSQL and Redis (services run).

A burst of 500 changes, committed here one transaction each, reaches every stream of both
processes once and in order, while one client reconnects mid-burst with Last-Event-ID, one
reads slowly through a small socket buffer, and one filters by patient. Each process reads the
log for all its streams (records/fanout.py): its readers' log statements stay near one per
event, where streams reading for themselves would make streams × events.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from records.models import RecordEvent
from records.selectors import log_head
from tests.support import live
from tests.support.records_support import Listener, index_study, reader_stats, rename_patient, wait_for
from tests.support.world import Clock, World

pytestmark = pytest.mark.services

BURST = 500
STREAMS_PER_SERVER = 12
BUFFER_EVENTS = 50  # small, so that the slow reader's feed overflows and it reads the log itself


@pytest.fixture
def servers(child_env: dict[str, str], run_dir: Path) -> Iterator[list[live.Server]]:
    env = {
        **child_env,
        "RECORDS_MAX_STREAMS_PER_KEY": "100",
        "RECORDS_STREAM_BUFFER_EVENTS": str(BUFFER_EVENTS),
        "LOG_LEVEL": "INFO",
    }
    started = [live.server(env, run_dir), live.server(env, run_dir)]
    yield started
    for srv in started:
        srv.stop()


def test_it_delivers_a_burst_to_every_stream_of_two_processes_once_and_in_order(
    servers: list[live.Server], world: World, clock: Clock
) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    index_study(acme, patient_id="P2", study_uid="1.2.3.2")
    head = log_head(organization_id=acme.pk)
    last = head + BURST
    expected = list(range(head + 1, last + 1))

    def listener(srv: live.Server, **params: str) -> Listener:
        return Listener(srv, world.bob.headers, position=head, last=last, **params)

    plain = [listener(srv) for srv in servers for _ in range(STREAMS_PER_SERVER)]
    reconnecting, slow = listener(servers[0]), listener(servers[1])
    p2 = listener(servers[0], patient="P2")  # the last change of the burst is P2's
    with ThreadPoolExecutor(max_workers=len(plain) + 3) as pool:
        futures = [pool.submit(client.read) for client in plain]
        reconnected = pool.submit(reconnecting.read, reconnect_after=BURST // 5)
        slowly = pool.submit(slow.read, pause=0.005, rcvbuf=4096)
        filtered = pool.submit(p2.read)
        for client in [*plain, reconnecting, slow, p2]:
            assert client.connected.wait(30)
        for n in range(BURST):  # P1 at even steps, P2 at odd ones: one event each
            rename_patient(acme, f"P{1 + n % 2}", f"Doe^Jane{n}")
        results = [future.result() for future in futures]
        assert all(ids == expected for ids in results)
        assert reconnected.result() == expected
        assert slowly.result() == expected
        p2_events = RecordEvent.objects.filter(organization=acme, seq__gt=head, patient_id="P2")
        assert filtered.result() == list(p2_events.order_by("seq").values_list("seq", flat=True))

    # Every stream has closed: each process's reader stopped and logged what it read.
    for srv in servers:
        stats = wait_for(lambda srv=srv: reader_stats(srv, acme.pk))
        # Every event after the head it started at (its start may come after the burst's first
        # commits: its streams read those themselves), once.
        assert head <= stats["head_start"] < last and stats["events"] == last - stats["head_start"]
        assert stats["streams_max"] >= STREAMS_PER_SERVER
        assert stats["reads_on_wake"] <= stats["events"]  # a wake-up for events already read costs nothing
        # Streams reading the log for themselves would make about 2 × streams × events statements.
        assert stats["queries"] + stats["stream_queries"] < 2 * BURST
