"""``GET /metrics`` scraped from real servers: an upload's bytes and instances, the request counts
by route and status, the indexing queue; off by default, token-protected when on; summed across
uvicorn worker processes. Parsed with prometheus-client's own parser, so the format is checked."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.world import World

TOKEN = "metrics-scraper-token"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    response = httpx.get(f"{url}/metrics", headers=SCRAPE, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def delta(after: dict, before: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    key = (name, tuple(sorted(labels.items())))
    return float(after.get(key, 0.0) - before.get(key, 0.0))


@pytest.fixture(scope="module")
def metrics_server(child_env: dict[str, str], run_dir: Path) -> Iterator[live.Server]:
    server = live.server({**child_env, "PRIZMED_METRICS_TOKEN": TOKEN}, run_dir)
    yield server
    server.stop()


def test_it_counts_an_upload_and_its_requests(metrics_server: live.Server, world: World) -> None:
    before = scrape(metrics_server.url)
    instance = make_instance()
    headers = {**world.bob.headers, "Content-Type": "application/dicom"}
    response = httpx.post(f"{metrics_server.url}/api/v2/dicom/stream", content=instance, headers=headers, timeout=30)
    assert response.status_code == 202
    assert httpx.get(f"{metrics_server.url}/api/v2/studies/1.2.3", headers=world.bob.headers).status_code == 404
    after = scrape(metrics_server.url)

    assert delta(after, before, "prizmed_upload_bytes_total") == len(instance)
    assert delta(after, before, "prizmed_upload_instances_total") == 1
    upload = {"route": "/api/v2/dicom/stream", "method": "POST", "status": "202"}
    assert delta(after, before, "prizmed_http_requests_total", **upload) == 1
    assert delta(after, before, "prizmed_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta(after, before, "prizmed_http_request_duration_seconds_count", route="/api/v2/dicom/stream") == 1
    assert ("prizmed_indexing_queue_uploads", ()) in after and ("prizmed_indexing_lag_seconds", ()) in after


def test_it_refuses_a_scrape_without_the_token(metrics_server: live.Server, server: live.Server) -> None:
    assert httpx.get(f"{metrics_server.url}/metrics").status_code == 401
    assert httpx.get(f"{metrics_server.url}/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(f"{server.url}/metrics", headers=SCRAPE).status_code == 404  # no token configured: off


def test_it_sums_every_worker_process(child_env: dict[str, str], run_dir: Path, tmp_path: Path) -> None:
    port = live.free_port()
    argv = [
        sys.executable, "-m", "uvicorn", "prizmed.asgi:application", "--host", "127.0.0.1", "--port", str(port),
        "--lifespan", "off", "--no-access-log", "--workers", "2",
    ]  # fmt: skip
    env = {**child_env, "PRIZMED_METRICS_TOKEN": TOKEN, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    server = live.Server(argv=argv, env=env, log_path=run_dir / f"uvicorn-{port}.log", port=port)
    server.start()
    try:
        with httpx.Client(base_url=server.url, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            for _ in range(40):  # a new connection each: the kernel spreads them over both workers
                assert client.get("/healthz").status_code == 200
        samples = scrape(server.url)
    finally:
        server.stop()
    healthz = {"route": "/healthz", "method": "GET", "status": "200"}
    # 40 here, and the one the start-up check made: however they fell on the two processes.
    assert samples[("prizmed_http_requests_total", tuple(sorted(healthz.items())))] >= 40
    assert len(list(tmp_path.glob("counter_*.db"))) == 2  # both processes counted
