"""accounts/usage.py: counts add up across flushes (as from several processes) and the usage
page's series shows each point's busiest minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from unittest import mock

from accounts.models import Organization, UsageMinute
from accounts.usage import usage_by_status, usage_count, usage_flush
from dashboard.usage import WINDOWS, usage_series
from tests.support.world import World

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


def _at(when: datetime) -> mock._patch[mock.MagicMock]:
    return mock.patch("accounts.usage.time.time", return_value=when.timestamp())


def test_it_adds_every_flush_to_the_minutes_rows(world: World) -> None:
    org = world.alice.org
    with _at(T0 + timedelta(seconds=5)):
        usage_count(org.pk, status=200, bytes_in=100)
        usage_count(org.pk, status=429)
    assert usage_flush() == 2
    with _at(T0 + timedelta(seconds=50)):  # the same minute, as another process would write it
        usage_count(org.pk, status=200, bytes_out=7)
    usage_flush()
    row = UsageMinute.objects.get(organization=org, minute=T0, status=200)
    assert (row.requests, row.bytes_in, row.bytes_out) == (2, 100, 7)
    assert usage_by_status(organization_id=org.pk, since=T0) == {200: 2, 429: 1}
    assert usage_flush() == 0  # nothing pending: nothing written twice


def test_it_plots_each_points_busiest_minute(world: World) -> None:
    org: Organization = world.alice.org
    for minute, n in ((0, 3), (7, 9), (14, 1), (16, 4)):
        with _at(T0 + timedelta(minutes=minute)):
            for _ in range(n):
                usage_count(org.pk, status=200, bytes_in=60)
    usage_flush()
    now = T0 + timedelta(minutes=29, seconds=30)
    series = usage_series(organization_id=org.pk, window=WINDOWS["day"], now=now)
    assert len(series["requests"]) == 96  # 15-minute points over a day
    assert series["requests"][-2:] == [9, 4]  # 10:00-10:14 peaks at 10:07; 10:15-10:29 at 10:16
    assert series["upload_bps"][-2] == 9 * 60 * 8 / 60
    hour = usage_series(organization_id=org.pk, window=WINDOWS["hour"], now=now)
    assert hour["requests"][-30:-14] == [3, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 1, 0]
