"""Per-organization rate limits, counted across keys and server processes.

The servers read the time from the shared clock file, so a test pins a window and moves past
it instead of sleeping.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from accounts.models import Role
from accounts.services import key_issue, organization_ensure
from tests.support import live
from tests.support.world import Clock, World


def hammer(urls: list[str], tokens: list[str], count: int) -> list[httpx.Response]:
    """`count` requests at once, spread over servers and keys."""

    def one(i: int) -> httpx.Response:
        headers = {"Authorization": f"Bearer {tokens[i % len(tokens)]}"}
        return httpx.get(f"{urls[i % len(urls)]}/api/v2/organization", headers=headers, timeout=30)

    with ThreadPoolExecutor(max_workers=25) as pool:
        return list(pool.map(one, range(count)))


def assert_exactly_one_window(responses: list[httpx.Response], clock: Clock) -> None:
    ok = [r for r in responses if r.status_code == 200]
    limited = [r for r in responses if r.status_code == 429]
    assert len(ok) == 60 and len(limited) == len(responses) - 60
    # Every count 1..60 was handed out exactly once: no overshoot, no double counting.
    assert sorted(int(r.headers["x-ratelimit-remaining"]) for r in ok) == list(range(60))
    reset = int((clock.now() // 60 + 1) * 60)
    for r in limited:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["retry-after"] == str(int(reset - clock.now()))  # 40 s: the clock is 20 s in
        assert r.headers["x-ratelimit-limit"] == "60"
        assert r.headers["x-ratelimit-remaining"] == "0"
        assert r.headers["x-ratelimit-reset"] == str(reset)


@pytest.fixture
def developer_tokens(world: World) -> list[str]:
    org = organization_ensure(slug="initech", plan_slug="developer")
    return [key_issue(organization=org, name=f"k{i}", role=Role.STANDARD)[1] for i in range(3)]


def test_it_allows_exactly_the_plan_rate_in_one_process(
    server: live.Server, clock: Clock, developer_tokens: list[str]
) -> None:
    responses = hammer([server.url], developer_tokens, 10) + hammer([server.url], developer_tokens, 90)
    assert_exactly_one_window(responses, clock)


@pytest.mark.services
def test_it_counts_across_two_server_processes_sharing_redis(
    server: live.Server, server2: live.Server, clock: Clock, developer_tokens: list[str]
) -> None:
    urls = [server.url, server2.url]
    responses = hammer(urls, developer_tokens, 10) + hammer(urls, developer_tokens, 100)
    assert_exactly_one_window(responses, clock)


def test_it_opens_a_new_window_when_the_old_one_ends(
    server: live.Server, clock: Clock, developer_tokens: list[str]
) -> None:
    hammer([server.url], developer_tokens, 61)
    assert hammer([server.url], developer_tokens, 1)[0].status_code == 429
    clock.advance(40)  # to the first second of the next window
    fresh = hammer([server.url], developer_tokens, 1)[0]
    assert fresh.status_code == 200
    assert fresh.headers["x-ratelimit-remaining"] == "59"


def test_it_does_not_limit_enterprise_and_limits_each_org_alone(api: httpx.Client, world: World) -> None:
    big = organization_ensure(slug="megacorp", plan_slug="enterprise")
    _, token = key_issue(organization=big, name="k")
    response = api.get("/organization", headers={"Authorization": f"Bearer {token}"})
    assert response.headers["x-ratelimit-limit"] == "unlimited"
    assert response.headers["x-ratelimit-remaining"] == "unlimited"
    acme = api.get("/organization", headers=world.bob.headers)
    assert acme.headers["x-ratelimit-limit"] == "600"
    assert acme.headers["x-ratelimit-remaining"] == "599"


def test_views_and_consumers_share_one_count_once_keys_are_verified(
    server: live.Server, developer_tokens: list[str], clock: Clock
) -> None:
    urls = [f"{server.url}/api/v2/organization", f"{server.url}/api/v2/dicomweb/studies"]
    for url in urls:  # each key verified once by each path (the consumers then count on the event loop)
        warm = [httpx.get(url, headers={"Authorization": f"Bearer {t}"}, timeout=30) for t in developer_tokens]
        assert [r.status_code for r in warm] == [200, 200, 200]
    clock.next_window()  # a fresh window: every count below is in it

    def one(i: int) -> httpx.Response:
        return httpx.get(urls[i % 2], headers={"Authorization": f"Bearer {developer_tokens[i % 3]}"}, timeout=30)

    with ThreadPoolExecutor(max_workers=25) as pool:
        responses = list(pool.map(one, range(90)))
    assert_exactly_one_window(responses, clock)
