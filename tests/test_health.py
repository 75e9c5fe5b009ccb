from __future__ import annotations

import httpx
from django.conf import settings

from tests.support import live


def test_it_reports_liveness_and_readiness_without_a_key(server: live.Server) -> None:
    assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{server.url}/readyz")
    assert ready.status_code == 200
    expected = {"database": "ok", **({"redis": "ok"} if settings.REDIS_URL else {}), "storage": "ok"}
    assert ready.json() == {"status": "ok", "checks": expected}
