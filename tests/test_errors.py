from __future__ import annotations

import httpx
from rest_framework.views import APIView

from core.problems import drf_exception_handler
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
