"""`Cache-Control: no-store` on every answer that carries PHI or upload state (issue 10 item 15):
Django views, raw ASGI consumers and problems alike, set once in core/gateway.py."""

from __future__ import annotations

import uuid

import httpx

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import post
from tests.support.world import World


def test_api_answers_and_problems_are_no_store(api: httpx.Client, world: World) -> None:
    answers = [
        api.get("/studies", headers=world.bob.headers),  # a DRF view: PHI
        api.get("/organization", headers=world.bob.headers),
        api.get("/studies"),  # 401 problem, from the key middleware
        api.get(f"/dicom/uploads/{uuid.uuid4()}", headers=world.bob.headers),  # 404 upload status
        api.get("/records/stream", headers=world.bob.headers),  # a consumer: a Bundle of PHI
        api.post("/dicom/stream", content=b"", headers=world.bob.headers),  # a consumer's problem
    ]
    for response in answers:
        assert response.headers.get("cache-control") == "no-store", (response.request.url, response.status_code)


def test_upload_receipts_and_status_are_no_store(api: httpx.Client, world: World) -> None:
    request_id = str(uuid.uuid4())
    headers = {**world.bob.headers, "Content-Type": "application/dicom", "X-Request-Id": request_id}
    receipt = post(api, make_instance(), headers)
    assert receipt.status_code == 202, receipt.text
    assert receipt.headers["cache-control"] == "no-store"
    status = api.get(f"/dicom/uploads/{request_id}", headers=world.bob.headers)
    assert status.status_code == 200
    assert status.headers["cache-control"] == "no-store"


def test_a_response_that_sets_its_own_caching_keeps_it(server: live.Server) -> None:
    # Static files carry no PHI: WhiteNoise's caching header stays as it is.
    response = httpx.get(f"{server.url}/static/admin/css/base.css", timeout=30)
    assert response.status_code == 200
    assert response.headers["cache-control"] != "no-store"
