"""Failed authentication is limited per client address (issue 10 item 12): past the limit a
request without a valid key gets 429 problem+json with Retry-After instead of 401, the crossing
is audited once as a Security Alert, and valid keys from the same address are never refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User

from accounts.models import AuditEntry
from tests.support import live
from tests.support.world import Clock, World
from tests.test_dashboard_viewer import PASSWORD, stow

LIMIT = 5
ATTACKER = {"X-Forwarded-For": "203.0.113.7"}  # uvicorn takes the address from its local proxy
NEIGHBOUR = {"X-Forwarded-For": "203.0.113.8"}
BAD = {"Authorization": "Bearer pzm_not_a_real_key"}
VIEWER_JSON = {"Accept": "application/dicom+json"}


@pytest.fixture
def limited_server(child_env: dict[str, str], run_dir: Path, clock: Clock) -> Iterator[live.Server]:
    srv = live.server({**child_env, "PRIZMED_AUTH_FAILURES_PER_MINUTE": str(LIMIT)}, run_dir)
    yield srv
    srv.stop()


@pytest.fixture
def limited(limited_server: live.Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{limited_server.url}/api/v2", timeout=30) as client:
        yield client


def test_it_limits_failed_authentication_per_address(limited: httpx.Client, world: World, clock: Clock) -> None:
    # Views and consumers count alike, and a key in the URL as a wrong one in the header.
    paths = ["/studies", "/records/stream", "/organization"]
    statuses = [limited.get(paths[i % 3], headers={**ATTACKER, **BAD}).status_code for i in range(LIMIT - 1)]
    statuses.append(limited.get("/studies?key=pzm_in_the_url", headers=ATTACKER).status_code)
    # Requests with no credentials at all are not counted (the dashboard viewer's cookie requests).
    statuses += [limited.get("/studies", headers=ATTACKER).status_code for _ in range(LIMIT + 1)]
    assert statuses == [401] * (2 * LIMIT + 1)

    for path in paths:
        refused = limited.get(path, headers={**ATTACKER, **BAD})
        assert refused.status_code == 429, path
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["retry-after"] == "40"  # the clock stands 20 s into its minute
        assert refused.json()["type"] == "/problems/too-many-failed-authentications"

    # The tenant behind the same address is not locked out, nor is another address, nor a
    # request without credentials (401 as ever, or the viewer's cookie).
    assert limited.get("/studies", headers=ATTACKER).status_code == 401
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


def test_the_dashboard_viewers_keyless_reads_are_never_limited(
    limited_server: live.Server, world: World, indexer: live.Process | None
) -> None:
    # The viewer reads DICOMweb with a cookie, not a key: well past the limit, still served.
    study = stow(limited_server, world.bob, "V-LIMIT")
    User.objects.create_superuser("olive", password=PASSWORD)
    with httpx.Client(base_url=limited_server.url, timeout=30) as browser:
        browser.get("/admin/login/")
        form = {"username": "olive", "password": PASSWORD, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
        assert browser.post("/admin/login/", data=form).status_code == 302
        assert browser.get(f"/dashboard/studies/{study.pk}/viewer").status_code == 302
        metadata = f"/api/v2/dicomweb/studies/{study.study_uid}/metadata"
        statuses = {browser.get(metadata, headers=VIEWER_JSON).status_code for _ in range(2 * LIMIT + 2)}
    assert statuses == {200}
