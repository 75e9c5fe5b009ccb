from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.support.world import World


def test_it_echoes_a_given_uuid4(api: httpx.Client, world: World) -> None:
    rid = str(uuid.uuid4())
    response = api.get("/organization", headers={**world.bob.headers, "X-Request-Id": rid})
    assert response.status_code == 200
    assert response.headers["x-request-id"] == rid


def test_it_generates_one_when_absent_even_on_errors(api: httpx.Client) -> None:
    for response in (api.get("/organization"), api.get("/no-such-route")):
        assert uuid.UUID(response.headers["x-request-id"]).version == 4
        assert response.json()["request_id"] == response.headers["x-request-id"]


def test_it_refuses_a_malformed_id_without_reflecting_it(api: httpx.Client, world: World) -> None:
    for bad in ("not-a-request-id", str(uuid.uuid1()), "00000000-0000-0000-0000-000000000000"):
        response = api.get("/organization", headers={**world.bob.headers, "X-Request-Id": bad})
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["x-request-id"] != bad
        assert bad not in response.text


def test_it_writes_the_id_in_every_log_line_of_the_request(server, api: httpx.Client, world: World) -> None:
    rid = str(uuid.uuid4())
    api.get("/no-such-route", headers={**world.bob.headers, "X-Request-Id": rid})
    lines: list[dict[str, str]] = []
    for _ in range(50):  # the access line is written just after the response is sent
        lines = [json.loads(line) for line in server.log().splitlines() if rid in line]
        if len(lines) >= 2:
            break
        time.sleep(0.1)
    assert {line["logger"] for line in lines} >= {"django.request", "prizmed.access"}
    assert all(line["request_id"] == rid for line in lines)
