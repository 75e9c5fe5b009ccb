"""`GET /studies` query parameters: unknown or empty ones are a 400 naming them, modality matches
in any case (CS values are upper case, PS3.5 §6.2), and `limit` outside 1-200 is a 400 naming it."""

from __future__ import annotations

import httpx
import pytest

from tests.support import dicomfactory as dcm
from tests.support.indexing import index_now, stored_upload
from tests.support.world import World


def _problem(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, object] = response.json()
    return body


@pytest.mark.parametrize("query", [{"patient": "P1"}, {"patient_id": "P1", "modalty": "MR"}])
def test_an_unknown_filter_is_refused_by_name_not_ignored(
    api: httpx.Client, world: World, query: dict[str, str]
) -> None:
    body = _problem(api.get("/studies", params=query, headers=world.bob.headers))
    unknown = sorted(set(query) - {"patient_id"})
    assert body["parameters"] == unknown
    assert all(name in str(body["detail"]) for name in unknown)
    assert "patient_id" in str(body["detail"])  # the names it does take


def test_an_empty_filter_is_refused_not_read_as_absent(api: httpx.Client, world: World) -> None:
    body = _problem(api.get("/studies", params={"modality": ""}, headers=world.bob.headers))
    assert body["parameters"] == ["modality"]


def test_modality_matches_whatever_its_case(api: httpx.Client, world: World) -> None:
    upload = index_now(stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=1, modality="US")))
    for given in ("US", "us", "Us"):
        response = api.get("/studies", params={"modality": given}, headers=world.bob.headers)
        assert response.status_code == 200
        assert [s["study_uid"] for s in response.json()["results"]] == upload.study_uids, given
    assert api.get("/studies", params={"modality": "mr"}, headers=world.bob.headers).json()["results"] == []


@pytest.mark.parametrize("limit", ["0", "201", "500", "-1", "ten", "1.5"])
def test_limit_out_of_bounds_is_a_400_naming_it(api: httpx.Client, world: World, limit: str) -> None:
    body = _problem(api.get("/studies", params={"limit": limit}, headers=world.bob.headers))
    assert body["parameter"] == "limit"
    assert body["detail"] == "limit must be an integer from 1 to 200."


def test_limit_within_bounds_pages(api: httpx.Client, world: World) -> None:
    for _ in range(2):
        index_now(stored_upload(world.alice.org, dcm.make_study(n_series=1, per_series=1)))
    first = api.get("/studies", params={"limit": "1"}, headers=world.bob.headers).json()
    assert len(first["results"]) == 1 and first["next"] and first["previous"] is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/organization"),
        ("GET", "/audit-events"),
        ("GET", "/dicom/uploads/6f1c2a8e-3b7d-4c1e-9f2a-1b2c3d4e5f60"),
        ("GET", "/dicom/streams/some-stream"),
        ("DELETE", "/dicom/streams/some-stream"),
    ],
)
def test_every_route_refuses_an_unknown_parameter_by_name(
    api: httpx.Client, world: World, method: str, path: str
) -> None:
    response = api.request(method, path, params={"verbose": "1"}, headers=world.alice.headers)
    assert _problem(response)["parameters"] == ["verbose"]
