"""The bandwidth pacer's arithmetic, with an injected clock (no timed assertions)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from django.conf import settings

from studies.ingest.pacing import LocalTimeline, Pacer

MBIT = 1_000_000


def test_it_lets_an_idle_line_start_at_once_then_spaces_pieces_at_the_plan_rate() -> None:
    line = LocalTimeline()
    # 8 Mbit/s = 1 MB/s: each 250 kB piece occupies 0.25 s of the line.
    waits = [line.book("org", seconds=250_000 * 8 / (8 * MBIT), now=100.0) for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.25, 0.5, 0.75])


def test_it_shares_one_line_between_an_organizations_uploads_but_not_across_organizations() -> None:
    line = LocalTimeline()
    assert line.book("a", seconds=1.0, now=0.0) == 0.0
    assert line.book("a", seconds=1.0, now=0.0) == pytest.approx(1.0)  # a second upload of "a" queues
    assert line.book("b", seconds=1.0, now=0.0) == 0.0  # another organization does not
    assert line.book("a", seconds=1.0, now=5.0) == 0.0  # an idle line banks no credit


def test_it_never_paces_an_unlimited_plan() -> None:
    now = [0.0]
    pacer = Pacer(redis_url="", namespace="t", clock=lambda: now[0])
    asyncio.run(pacer.pace(organization_id=1, bps=None, nbytes=10**9))
    assert pacer.local.book("t:pace:1", seconds=0.0, now=0.0) == 0.0  # nothing was booked


def test_it_computes_delays_from_its_clock() -> None:
    now = [10.0]
    pacer = Pacer(redis_url="", namespace="t", clock=lambda: now[0])

    async def delays() -> list[float]:
        first = await pacer.delay(organization_id=7, bps=8 * MBIT, nbytes=500_000)
        second = await pacer.delay(organization_id=7, bps=8 * MBIT, nbytes=500_000)
        now[0] = 10.2
        third = await pacer.delay(organization_id=7, bps=8 * MBIT, nbytes=500_000)
        return [first, second, third]

    assert asyncio.run(delays()) == pytest.approx([0.0, 0.5, 0.8])


@pytest.mark.services
def test_it_shares_the_line_between_processes_through_redis() -> None:
    now = [1000.0]
    namespace = f"test-pace-{uuid.uuid4().hex[:8]}"
    # Two pacers stand for two server processes: one Redis timeline.
    one, two = (Pacer(redis_url=settings.REDIS_URL, namespace=namespace, clock=lambda: now[0]) for _ in range(2))

    async def delays() -> list[float]:
        return [
            await one.delay(organization_id=1, bps=8 * MBIT, nbytes=1_000_000),
            await two.delay(organization_id=1, bps=8 * MBIT, nbytes=1_000_000),
            await one.delay(organization_id=2, bps=8 * MBIT, nbytes=1_000_000),
        ]

    assert asyncio.run(delays()) == pytest.approx([0.0, 1.0, 0.0])
