from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from rest_framework.views import APIView

from core.errors import ApiError
from core.problems import drf_exception_handler, send_problem
from tests.support.world import World


def test_it_answers_unknown_api_paths_with_a_problem(api: httpx.Client, world: World) -> None:
    for headers in ({}, world.bob.headers):
        response = api.get("/no/such/thing", headers=headers)
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/problem+json"
        assert set(response.json()) == {"type", "title", "status", "detail", "request_id"}


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
