"""Issue 10 items 3 and 4: Redis or the database unreachable → a 503 problem with Retry-After,
quickly, on every kind of route (DRF views, the upload and record-stream consumers, DICOMweb,
the WebSocket handshake); /readyz names the backend that is down; pooled database connections
the server killed are replaced, not handed to a request. The rate limiter fails closed.

Redis is a private one started and stopped here; the database is reached through a TCP proxy
the test cuts, so only this app loses it.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.db import connection
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from studies.models import Upload
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.faults import PrivateRedis, TcpProxy, fault_env, wait_until
from tests.support.ingest_support import sha, stored
from tests.support.world import World
from tests.test_auth import assert_problem

pytestmark = [pytest.mark.services, pytest.mark.faults]


def routes(world: World) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """One request of each kind of route: method, path, headers, body."""
    key = world.bob.headers
    return [
        ("GET", "/api/v2/studies", key, None),  # a DRF view
        ("GET", f"/api/v2/dicom/uploads/{uuid.uuid4()}", key, None),
        ("POST", "/api/v2/dicom/stream", {**key, "Content-Type": "application/dicom"}, make_instance()),
        ("GET", "/api/v2/records/stream", {**key, "Accept": "text/event-stream"}, None),  # consumer
        ("GET", "/api/v2/records/stream", {**key, "Accept": "application/fhir+json"}, None),
        ("GET", "/api/v2/dicomweb/studies", {**key, "Accept": "application/dicom+json"}, None),
    ]


def assert_all_unavailable(server: live.Server, world: World, backend: str) -> None:
    for method, path, headers, body in routes(world):
        response = httpx.request(method, f"{server.url}{path}", headers=headers, content=body, timeout=30)
        assert_problem(response, 503)
        assert response.json()["backend"] == backend, (path, response.text)
        assert response.json()["type"] == "/problems/backend-unavailable"
        assert int(response.headers["retry-after"]) > 0
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{server.port}/ws/v2/dicom/stream", additional_headers=world.bob.headers)
    assert refused.value.response.status_code == 503
    ready = httpx.get(f"{server.url}/readyz", timeout=30)
    assert ready.status_code == 503 and backend in ready.json()["down"]
    assert int(ready.headers["retry-after"]) > 0


def assert_all_served(server: live.Server, world: World) -> None:
    # A pool or client reconnects with back-off once the backend is back: wait for readiness.
    wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200, what="ready again")
    for method, path, headers, body in routes(world):
        if "event-stream" in headers.get("Accept", ""):
            continue  # an endless stream: its refusal was the point above
        response = httpx.request(method, f"{server.url}{path}", headers=headers, content=body, timeout=30)
        assert response.status_code in (200, 202, 404), (path, response.text)


def test_redis_down_is_503_on_every_route_and_the_rate_limiter_fails_closed(
    child_env: dict[str, str], run_dir: Path, redis: PrivateRedis, world: World
) -> None:
    server = live.server(fault_env(child_env, redis), run_dir)
    try:
        assert_all_served(server, world)
        redis.stop()
        # Fails closed: without its counter no request is let through unmetered.
        assert_all_unavailable(server, world, "redis")
        redis.start()
        assert_all_served(server, world)
    finally:
        server.stop()


@pytest.fixture
def proxy() -> Iterator[TcpProxy]:
    port = int(urlsplit(live.database_url(settings.DATABASES["default"])).port or 5432)
    forwarder = TcpProxy(port)
    yield forwarder
    forwarder.cut()


def test_database_down_is_503_on_every_route_and_back_once_it_returns(
    child_env: dict[str, str], run_dir: Path, proxy: TcpProxy, world: World
) -> None:
    url = urlsplit(live.database_url(settings.DATABASES["default"]))
    via_proxy = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}").geturl()
    server = live.server({**child_env, "DATABASE_URL": via_proxy}, run_dir)
    try:
        assert_all_served(server, world)
        proxy.cut()
        assert_all_unavailable(server, world, "database")
        proxy.restore()
        assert_all_served(server, world)
    finally:
        server.stop()


def test_pooled_connections_the_database_killed_are_replaced(server: live.Server, world: World) -> None:
    # Concurrent requests grow the server's pool to several connections, idle afterwards (a
    # database restart finds a process like this). psycopg_pool waited out one backoff per dead
    # idle connection (1 s, 2 s, ...), past the pool timeout: 503s with the database back.
    def studies() -> int:
        return httpx.get(f"{server.url}/api/v2/studies", headers=world.bob.headers, timeout=30).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: studies(), range(48))) == {200}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 3  # the pool holds several idle connections
        # With a timeout, pg_terminate_backend returns once each backend has exited.
        cursor.execute(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    for _ in range(12):
        response = httpx.get(f"{server.url}/api/v2/studies", headers=world.bob.headers, timeout=30)
        assert response.status_code == 200, response.text


def test_an_upload_whose_database_goes_mid_body_is_503_and_its_retry_succeeds(
    child_env: dict[str, str], run_dir: Path, proxy: TcpProxy, world: World
) -> None:
    url = urlsplit(live.database_url(settings.DATABASES["default"]))
    via_proxy = url._replace(netloc=f"{url.username}@127.0.0.1:{proxy.port}").geturl()
    env = {**child_env, "DATABASE_URL": via_proxy, "UPLOAD_STALE_SECONDS": "2", "UPLOAD_HEARTBEAT_SECONDS": "1"}
    server = live.server(env, run_dir)
    request_id = str(uuid.uuid4())
    instance = make_instance(sop_uid="1.2.3.11.1")
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    database_gone = threading.Event()

    def body() -> Iterator[bytes]:
        yield instance[: len(instance) // 2]
        database_gone.wait(60)
        yield instance[len(instance) // 2 :]

    try:
        answer: list[httpx.Response] = []
        sender = threading.Thread(
            target=lambda: answer.append(
                httpx.post(f"{server.url}/api/v2/dicom/stream", content=body(), headers=headers, timeout=60)
            )
        )
        sender.start()
        wait_until(lambda: Upload.objects.filter(pk=request_id).exists(), what="mid-body")
        proxy.cut()
        database_gone.set()
        sender.join(90)

        assert answer, "no answer"
        assert_problem(answer[0], 503)  # not acknowledged: the client knows to retry
        assert answer[0].json()["backend"] == "database"
        assert not stored(child_env, f"uploads/{world.bob.org.pk}/{request_id}")  # nothing half-written

        proxy.restore()
        wait_until(lambda: httpx.get(f"{server.url}/readyz", timeout=30).status_code == 200, what="ready again")
        # The row the dead request could not remove says `receiving`: a 409 with Retry-After
        # until it counts as dead, then the retry takes the id over (never 24 h of 409s).
        retries: list[httpx.Response] = []

        def retried() -> bool:
            retries.append(httpx.post(f"{server.url}/api/v2/dicom/stream", content=instance, headers=headers))
            return retries[-1].status_code != 409

        wait_until(retried, what="the retry accepted")
        assert retries[-1].status_code == 202, retries[-1].text
        assert retries[-1].json()["sha256"] == sha(instance)
        assert all("retry-after" in r.headers for r in retries[:-1])
    finally:
        server.stop()
