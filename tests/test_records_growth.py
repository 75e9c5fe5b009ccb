"""records.growth.log_growth: a waiter hears the commit of its organization's record events at
once, and not another organization's (in-memory layer embedded, Redis in the services run)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from channels.db import database_sync_to_async
from django.db import connections

from records.growth import log_growth
from tests.support.records_support import index_study
from tests.support.world import World


@pytest.fixture(autouse=True)
def pool_closed() -> Iterator[None]:
    yield
    connections.close_all()  # executor threads' connections (as tests/test_records_fanout.py)
    for conn in connections.all():
        if conn.vendor == "postgresql":
            conn.close_pool()  # type: ignore[attr-defined]  # the PostgreSQL backend's


def test_a_waiter_hears_its_organizations_commits_only(world: World) -> None:
    acme, globex = world.bob.org, world.carol.org

    async def scenario() -> None:
        async with log_growth(acme.pk) as grown:
            await database_sync_to_async(index_study)(globex, patient_id="G1", study_uid="1.2.9.1")
            with pytest.raises(TimeoutError):  # another organization's commit is not ours
                async with asyncio.timeout(1):
                    await grown.wait()
            await database_sync_to_async(index_study)(acme, patient_id="P1", study_uid="1.2.3.1")
            async with asyncio.timeout(10):  # only a wake-up sets it: log_growth itself polls nothing
                await grown.wait()

    asyncio.run(scenario())
