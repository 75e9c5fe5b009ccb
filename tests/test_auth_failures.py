"""Failed authentication is limited per client address (issue 10 item 12): past the limit a
request without a valid key gets 429 problem+json with Retry-After instead of 401, the crossing
is audited once as a Security Alert, and valid keys from the same address are never refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from accounts.models import AuditEntry
from tests.support import live
from tests.support.world import Clock, World

LIMIT = 5
ATTACKER = {"X-Forwarded-For": "203.0.113.7"}  # uvicorn takes the address from its local proxy
NEIGHBOUR = {"X-Forwarded-For": "203.0.113.8"}
BAD = {"Authorization": "Bearer pzm_not_a_real_key"}


@pytest.fixture
def limited(child_env: dict[str, str], run_dir: Path, clock: Clock) -> Iterator[httpx.Client]:
    srv = live.server({**child_env, "PRIZMED_AUTH_FAILURES_PER_MINUTE": str(LIMIT)}, run_dir)
    try:
        with httpx.Client(base_url=f"{srv.url}/api/v2", timeout=30) as client:
            yield client
    finally:
        srv.stop()


def test_it_limits_failed_authentication_per_address(limited: httpx.Client, world: World, clock: Clock) -> None:
    # Views and consumers count alike; a missing key fails as a wrong one does.
    paths = ["/studies", "/records/stream", "/organization"]
    statuses = [limited.get(paths[i % 3], headers={**ATTACKER, **BAD}).status_code for i in range(LIMIT - 1)]
    statuses.append(limited.get("/studies", headers=ATTACKER).status_code)
    assert statuses == [401] * LIMIT

    for path in paths:
        refused = limited.get(path, headers={**ATTACKER, **BAD})
        assert refused.status_code == 429, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "40"  # the clock stands 20 s into its minute
        assert refused.json()["type"] == "/problems/too-many-failed-authentications"

    # The tenant behind the same address is not locked out, nor is another address.
    assert limited.get("/organization", headers={**ATTACKER, **world.bob.headers}).status_code == 200
    assert limited.get("/records/stream", headers={**ATTACKER, **world.bob.headers}).status_code == 200
    assert limited.get("/studies", headers={**NEIGHBOUR, **BAD}).status_code == 401

    alerts = AuditEntry.objects.filter(action="auth.failures")
    assert [(a.outcome, a.status_code, a.client_address) for a in alerts] == [("security-alert", 429, "203.0.113.7")]

    clock.next_window()
    assert limited.get("/studies", headers={**ATTACKER, **BAD}).status_code == 401


def test_a_security_alert_names_the_revoked_key_tried(limited: httpx.Client, world: World) -> None:
    for _ in range(LIMIT + 3):
        limited.get("/studies", headers={**ATTACKER, **world.revoked.headers})
    (alert,) = AuditEntry.objects.filter(action="auth.failures")
    assert (alert.organization_id_value, alert.key_prefix) == (world.revoked.org.pk, world.revoked.key.prefix)

    bundle = limited.get("/audit-events", headers=world.alice.headers).json()
    (event,) = [e["resource"] for e in bundle["entry"]]
    assert event["type"]["code"] == "110113" and event["type"]["display"] == "Security Alert"
    assert event["action"] == "E" and event["outcome"] == "4"
    assert event["agent"][0]["network"]["address"] == "203.0.113.7"


def test_an_unreachable_counter_store_fails_open(child_env: dict[str, str], run_dir: Path, world: World) -> None:
    # Nothing listens on this port: the failed-authentication counter cannot be reached. The
    # request is refused all the same (401), as before the limit existed; only the flood
    # protection waits for the store to come back.
    dead_redis = f"redis://127.0.0.1:{live.free_port()}/0"
    srv = live.server({**child_env, "REDIS_URL": dead_redis, "PRIZMED_AUTH_FAILURES_PER_MINUTE": "1"}, run_dir)
    try:
        for _ in range(3):
            response = httpx.get(f"{srv.url}/api/v2/studies", headers=BAD, timeout=30)
            assert response.status_code == 401, response.text
    finally:
        srv.stop()
    assert "failed-authentication counter unavailable" in srv.log()
