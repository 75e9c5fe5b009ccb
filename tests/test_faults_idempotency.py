"""Issue 10 item 14: a request id replays only the payload it was first used for.

Another payload under a used X-Request-Id is a 422 `request-id-reused` naming the conflict, and
nothing of it is stored (the IETF Idempotency-Key draft's semantics); a Content-Digest that
contradicts the recorded payload is refused before the body is read.
"""

from __future__ import annotations

import uuid

import httpx

from studies.models import Upload, UploadItem
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import RawRequest, digest_header, partials, post, sha, stored
from tests.support.world import World
from tests.test_auth import assert_problem

DICOM = {"Content-Type": "application/dicom"}


def assert_only_first_stored(child_env: dict[str, str], world: World, request_id: str, first: bytes) -> None:
    assert list(Upload.objects.filter(organization=world.bob.org).values_list("pk", flat=True)) == [
        uuid.UUID(request_id)
    ]
    assert UploadItem.objects.filter(upload__organization=world.bob.org).count() == 1
    (path,) = stored(child_env, f"uploads/{world.bob.org.pk}")
    assert path.read_bytes() == first
    assert not partials(child_env)


def assert_reused(response: httpx.Response, request_id: str, first: bytes) -> None:
    assert_problem(response, 422)
    body = response.json()
    assert body["type"] == "/problems/request-id-reused"
    assert request_id in body["detail"] and sha(first) in body["detail"]
    assert body["upload"]["request_id"] == request_id and body["upload"]["sha256"] == sha(first)


def test_another_payload_under_a_used_request_id_is_422_and_not_stored(
    api: httpx.Client, world: World, child_env
) -> None:
    request_id = str(uuid.uuid4())
    a, b = make_instance(sop_uid="1.2.3.4.1"), make_instance(sop_uid="1.2.3.4.2")
    headers = {**world.bob.headers, **DICOM, "X-Request-Id": request_id}
    assert post(api, a, headers).status_code == 202

    assert_reused(post(api, b, headers), request_id, a)
    assert_only_first_stored(child_env, world, request_id, a)

    again = post(api, a, headers)  # the first payload again: still its replay
    assert again.status_code == 202 and again.json()["sha256"] == sha(a)
    assert_only_first_stored(child_env, world, request_id, a)


def test_a_digest_naming_another_payload_is_refused_before_the_body(
    server: live.Server, api: httpx.Client, world: World, child_env
) -> None:
    request_id = str(uuid.uuid4())
    a, b = make_instance(sop_uid="1.2.3.5.1"), make_instance(sop_uid="1.2.3.5.2")
    assert post(api, a, {**world.bob.headers, **DICOM, "X-Request-Id": request_id}).status_code == 202

    # B's digest and length announced, not a byte of B sent: the answer must come anyway.
    headers = {**world.bob.headers, **DICOM, "X-Request-Id": request_id, "Content-Digest": digest_header(b)}
    raw = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Content-Length": str(len(b))})
    response = raw.response()

    assert response.status == 422 and response.json()["type"] == "/problems/request-id-reused"
    assert_only_first_stored(child_env, world, request_id, a)


def test_a_digest_naming_the_same_payload_replays(api: httpx.Client, world: World, child_env) -> None:
    request_id = str(uuid.uuid4())
    a = make_instance(sop_uid="1.2.3.6.1")
    headers = {**world.bob.headers, **DICOM, "X-Request-Id": request_id}
    first = post(api, a, headers)

    again = post(api, a, {**headers, "Content-Digest": digest_header(a)})

    assert again.status_code == 202 and again.json() == {**first.json(), "state": again.json()["state"]}
    assert_only_first_stored(child_env, world, request_id, a)
