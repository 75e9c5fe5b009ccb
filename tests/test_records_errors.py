"""GET /records/stream refusals: auth, bad headers and parameters, Accept, and the stream cap."""

from __future__ import annotations

from contextlib import ExitStack

import httpx
import pytest

from tests.support import live
from tests.support.records_support import SseClient, stream_timeout, wait_for
from tests.support.world import World
from tests.test_auth import assert_problem

PATH = "/api/v2/records/stream"
SSE = {"Accept": "text/event-stream"}


def test_it_refuses_a_missing_key_with_401_and_bearer_challenge(server: live.Server, world: World) -> None:
    for accept in ("text/event-stream", "application/fhir+json", "application/fhir+ndjson"):
        response = httpx.get(f"{server.url}{PATH}", headers={"Accept": accept})
        assert_problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("headers", "params"),
    [
        ({"X-Record-Id": "not-a-uuid"}, {}),
        ({"X-Record-Id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}, {}),  # a UUID v1
        ({"X-Record-Seq": "-1"}, {}),
        ({"Last-Event-ID": "abc"}, {}),
        ({"X-Record-Stream": "has spaces"}, {}),
        ({}, {"since": "x"}),
        ({}, {"_count": "0"}),
        ({}, {"_count": "1001"}),
        ({}, {"study": "not-a-uid"}),
        ({}, {"patient": ""}),
    ],
)
def test_it_refuses_bad_headers_and_parameters_with_400(
    server: live.Server, world: World, headers: dict[str, str], params: dict[str, str]
) -> None:
    response = httpx.get(f"{server.url}{PATH}", headers={**world.bob.headers, **SSE, **headers}, params=params)
    assert_problem(response, 400)


def test_it_refuses_an_unsupported_accept_with_406(server: live.Server, world: World) -> None:
    for accept in ("text/html", "application/xml", "text/event-stream;q=0"):
        response = httpx.get(f"{server.url}{PATH}", headers={**world.bob.headers, "Accept": accept})
        assert_problem(response, 406)


def test_it_refuses_other_methods_with_405(server: live.Server, world: World) -> None:
    for method in ("POST", "DELETE", "PUT"):
        response = httpx.request(method, f"{server.url}{PATH}", headers=world.bob.headers)
        assert_problem(response, 405)
        assert response.headers["allow"] == "GET"


def test_it_chooses_by_accept_quality(server: live.Server, world: World) -> None:
    accept = "application/fhir+json;q=0.5, application/fhir+ndjson;q=0.9"
    response = httpx.get(f"{server.url}{PATH}", headers={**world.bob.headers, "Accept": accept})
    assert response.headers["content-type"] == "application/fhir+ndjson"
    default = httpx.get(f"{server.url}{PATH}", headers={**world.bob.headers, "Accept": "*/*"})
    assert default.headers["content-type"] == "application/fhir+json"


def open_streams(stack: ExitStack, srv: live.Server, headers: dict[str, str], count: int) -> list[SseClient]:
    """Open SSE streams and hold them (dropping a reader would close its connection)."""
    opened = []
    for _ in range(count):
        client = stack.enter_context(httpx.Client(base_url=srv.url, timeout=stream_timeout()))
        response = stack.enter_context(client.stream("GET", PATH, headers={**headers, **SSE}))
        assert response.status_code == 200
        reader = SseClient(response)
        reader.until("snapshot-end")  # the slot is held from here on
        opened.append(reader)
    return opened


def cap_reached(srv: live.Server, headers: dict[str, str]) -> bool:
    return httpx.get(f"{srv.url}{PATH}", headers={**headers, "Accept": "application/fhir+ndjson"}).status_code == 429


def test_it_caps_concurrent_streams_per_key_and_frees_slots_on_disconnect(server: live.Server, world: World) -> None:
    with ExitStack() as stack:
        held = open_streams(stack, server, world.bob.headers, 5)
        refused = httpx.get(f"{server.url}{PATH}", headers={**world.bob.headers, **SSE}, timeout=stream_timeout())
        assert_problem(refused, 429)
        assert refused.headers["retry-after"]
        # The cap is per key: another key of the same organization still streams.
        with ExitStack() as other:
            assert open_streams(other, server, world.alice.headers, 1)
        assert len(held) == 5
    # All five connections closed: their slots come back as soon as the server sees the disconnect.
    wait_for(lambda: not cap_reached(server, world.bob.headers))
    with ExitStack() as stack:
        open_streams(stack, server, world.bob.headers, 5)


@pytest.mark.services
def test_it_counts_the_cap_across_server_processes(server: live.Server, server2: live.Server, world: World) -> None:
    with ExitStack() as stack:
        held = open_streams(stack, server, world.bob.headers, 3) + open_streams(stack, server2, world.bob.headers, 2)
        assert cap_reached(server, world.bob.headers)
        assert cap_reached(server2, world.bob.headers)
        assert len(held) == 5
    wait_for(lambda: not cap_reached(server2, world.bob.headers))
