from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from rest_framework.views import APIView

from core.errors import ApiError
from core.problems import drf_exception_handler, send_problem
from tests.support import live
from tests.support.world import World


def test_it_answers_unknown_api_paths_with_a_problem(api: httpx.Client, world: World) -> None:
    for headers in ({}, world.bob.headers):
        response = api.get("/no/such/thing", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) == {"type", "title", "status", "detail", "request_id"}


def test_it_answers_every_method_on_unknown_api_paths_with_a_problem_not_a_csrf_page(
    server: live.Server, world: World
) -> None:
    """Django's CSRF check once answered POST/PUT/PATCH/DELETE here with its HTML 403 page."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/api/v2/no/such/thing", "/api/elsewhere"):
            for method in ("POST", "PUT", "PATCH", "DELETE"):
                for headers in ({}, world.bob.headers, {**world.bob.headers, "Cookie": "csrftoken=x; sessionid=y"}):
                    response = client.request(method, path, headers=headers, content=b"{}")
                    assert response.status_code == 404, (method, path, response.text[:200])
                    assert response.headers["content-type"] == "application/problem+json"


def test_it_answers_trace_with_405_and_a_forged_host_with_a_400_problem(server: live.Server, world: World) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for path in ("/api/v2/organization", "/api/v2/studies", "/api/v2/dicom/stream", "/api/v2/records/stream"):
            response = client.request("TRACE", path, headers=world.bob.headers)
            assert response.status_code == 405, path
            assert response.headers["content-type"] == "application/problem+json"
        forged = client.get("/api/v2/organization", headers={**world.bob.headers, "Host": "evil.example"})
        assert forged.status_code == 400
        assert forged.headers["content-type"] == "application/problem+json"
        assert forged.json()["status"] == 400


def test_it_answers_a_wrong_method_with_a_problem(api: httpx.Client, world: World) -> None:
    response = api.post("/organization", headers=world.bob.headers, json={})
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Method Not Allowed"


def test_it_hides_a_crash_behind_a_500_problem() -> None:
    response = drf_exception_handler(RuntimeError("secret internals"), {"view": APIView()})
    assert response.status_code == 500
    assert response.data["title"] == "Internal Server Error"
    assert "secret internals" not in str(response.data)


def test_it_renders_one_api_error_the_same_for_drf_and_for_raw_asgi() -> None:
    error = ApiError(429, "Too many.", slug="too-many-streams", headers=[("Retry-After", "5")], hint="wait")
    drf = drf_exception_handler(error, {"view": APIView()})
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(send_problem(send, error))

    start, body = sent
    assert start["status"] == drf.status_code == 429
    assert (
        json.loads(body["body"])
        == drf.data
        == {
            "type": "/problems/too-many-streams",
            "title": "Too Many Requests",
            "status": 429,
            "detail": "Too many.",
            "request_id": "-",
            "hint": "wait",
        }
    )
    assert (b"retry-after", b"5") in start["headers"] and drf["Retry-After"] == "5"
    assert dict(start["headers"])[b"content-type"].decode() == drf.content_type == "application/problem+json"


def test_under_the_fhir_api_even_the_gateways_refusal_is_an_operation_outcome(
    server: live.Server, world: World
) -> None:
    response = httpx.get(
        f"{server.url}/api/v2/fhir/metadata", headers={**world.bob.headers, "X-Request-Id": "0"}, timeout=30
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/fhir+json")
    assert response.json()["resourceType"] == "OperationOutcome"
