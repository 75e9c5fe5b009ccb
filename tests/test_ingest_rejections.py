"""Every refusal of POST /dicom/stream: its status, and nothing left in storage or database."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from studies.models import Upload
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import (
    BOUNDARY,
    RawRequest,
    assert_nothing_left,
    digest_header,
    pieces,
    post,
    set_plan,
    wait_for,
)
from tests.support.multipart import build_multipart
from tests.support.world import World
from tests.test_auth import assert_problem

DICOM = {"Content-Type": "application/dicom"}


def test_it_refuses_non_dicom_from_the_first_bytes(server: live.Server, world: World, child_env) -> None:
    # Announces 100 MB but sends 132 bytes, then waits: the 422 must come without the rest.
    raw = RawRequest(server.url, "/api/v2/dicom/stream", {**world.bob.headers, **DICOM, "Content-Length": "100000000"})
    raw.send(b"\x7fELF" + b"\0" * 200)

    response = raw.response()

    assert response.status == 422 and response.json()["type"] == "/problems/not-dicom"
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_non_dicom_sent_in_full(api: httpx.Client, world: World, child_env) -> None:
    response = post(api, b"not dicom at all" * 1000, {**world.bob.headers, **DICOM})
    assert_problem(response, 422)
    assert_nothing_left(child_env, world.bob.org)


@pytest.mark.parametrize("content_type", ["text/plain", "multipart/related; boundary=x", None])
def test_it_refuses_other_content_types(api: httpx.Client, world: World, child_env, content_type) -> None:
    headers = {**world.bob.headers, **({"Content-Type": content_type} if content_type else {})}
    response = post(api, make_instance(), headers)
    assert_problem(response, 415)
    assert_nothing_left(child_env, world.bob.org)


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "application/dicom+stream"}, 400),  # no boundary
        ({**DICOM, "X-Chunk-Seq": "0"}, 400),  # a chunk without a stream
        ({**DICOM, "X-Stream-Id": "s1"}, 400),  # a stream chunk without its number
        ({**DICOM, "X-Stream-Id": "s1", "X-Chunk-Seq": "-1"}, 400),
        ({**DICOM, "X-Stream-Id": "bad/id", "X-Chunk-Seq": "0"}, 400),
        ({**DICOM, "X-Stream-Id": "s1", "X-Chunk-Seq": "0", "X-Chunk-Last": "maybe"}, 400),
        ({**DICOM, "Content-Digest": "sha-256=:bm90IDMyIGJ5dGVz:"}, 400),
    ],
)
def test_it_refuses_bad_headers(api: httpx.Client, world: World, child_env, headers, status) -> None:
    assert_problem(post(api, make_instance(), {**world.bob.headers, **headers}), status)
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_body_that_does_not_match_its_digest(api: httpx.Client, world: World, child_env) -> None:
    headers = {**world.bob.headers, **DICOM, "Content-Digest": digest_header(b"other bytes")}
    response = post(api, make_instance(), headers)
    assert_problem(response, 400)
    assert response.json()["type"] == "/problems/digest-mismatch"
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_malformed_or_truncated_multipart_body(api: httpx.Client, world: World, child_env) -> None:
    headers = {**world.bob.headers, "Content-Type": f"application/dicom+stream; boundary={BOUNDARY}"}
    body = build_multipart([make_instance(), make_instance()], BOUNDARY)
    assert_problem(post(api, body[:-40], headers), 422)  # no close delimiter
    assert_problem(post(api, build_multipart([], BOUNDARY), headers), 422)  # no instance
    not_dicom = build_multipart([make_instance()], BOUNDARY).replace(b"application/dicom", b"text/plain")
    assert_problem(post(api, not_dicom, headers), 415)  # a part that is not DICOM
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_second_multipart_instance_that_is_not_dicom(api: httpx.Client, world: World, child_env) -> None:
    headers = {**world.bob.headers, "Content-Type": f"application/dicom+stream; boundary={BOUNDARY}"}
    body = build_multipart([make_instance(pixel_bytes=500_000), b"\0" * 128 + b"NOPE" + b"\0" * 64], BOUNDARY)
    assert_problem(post(api, pieces(body), headers), 422)  # the first instance, stored meanwhile, goes too
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_an_announced_body_over_4_gib_before_reading(server: live.Server, world: World, child_env) -> None:
    headers = {**world.bob.headers, **DICOM, "Content-Length": str(4 * 1024**3 + 1)}
    response = RawRequest(server.url, "/api/v2/dicom/stream", headers).response()
    assert response.status == 413
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_body_over_the_plan_study_size(server: live.Server, world: World, child_env) -> None:
    set_plan(world.bob.org, max_study_bytes=1_000_000)
    headers = {**world.bob.headers, **DICOM}

    announced = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Content-Length": "1000001"})
    assert announced.response().status == 413  # before a byte of the body

    # Transfer-Encoding: chunked, so the size shows only as the body grows.
    growing = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Transfer-Encoding": "chunked"})
    body = make_instance(pixel_bytes=1_100_000)
    for start in range(0, len(body), 100_000):
        piece = body[start : start + 100_000]
        growing.send(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
    response = growing.response()
    assert response.status == 413 and response.json()["type"] == "/problems/too-large"
    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_a_request_id_still_receiving(server: live.Server, world: World, child_env) -> None:
    request_id = str(uuid.uuid4())
    headers = {**world.bob.headers, **DICOM, "X-Request-Id": request_id}
    instance = make_instance(pixel_bytes=200_000)
    first = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Content-Length": str(len(instance))})
    first.send(instance[:1000])
    wait_for(lambda: Upload.objects.filter(pk=request_id).exists())

    with httpx.Client(base_url=f"{server.url}/api/v2") as client:
        assert_problem(post(client, instance, headers), 409)

    first.send(instance[1000:])
    assert first.response().status == 202  # the first request was not disturbed
    assert Upload.objects.get(pk=request_id).instances_received == 1


def test_it_removes_what_a_client_sent_before_disconnecting(server: live.Server, world: World, child_env) -> None:
    headers = {**world.bob.headers, "Content-Type": f"application/dicom+stream; boundary={BOUNDARY}"}
    body = build_multipart([make_instance(pixel_bytes=300_000) for _ in range(3)], BOUNDARY)
    raw = RawRequest(server.url, "/api/v2/dicom/stream", {**headers, "Content-Length": str(len(body))})
    raw.send(body[: len(body) * 2 // 3])  # two instances stored, the third half-way
    wait_for(lambda: Upload.objects.filter(organization=world.bob.org).exists())

    raw.close()

    assert_nothing_left(child_env, world.bob.org)


def test_it_refuses_anonymous_uploads_without_reading(api: httpx.Client, world: World, child_env) -> None:
    response = post(api, make_instance(), DICOM)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"
    assert_nothing_left(child_env, world.bob.org)


def test_it_answers_405_to_other_methods(api: httpx.Client, world: World) -> None:
    response = api.get("/dicom/stream", headers=world.bob.headers)
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


def test_it_keeps_concurrent_uploads_apart(api: httpx.Client, world: World, child_env) -> None:
    instances = [make_instance(pixel_bytes=400_000) for _ in range(4)]
    results: list[httpx.Response] = []

    def send(instance: bytes) -> None:
        with httpx.Client(base_url=str(api.base_url), timeout=30) as client:
            results.append(post(client, pieces(instance, 50_000), {**world.bob.headers, **DICOM}))

    threads = [threading.Thread(target=send, args=(i,)) for i in instances]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(r.status_code for r in results) == [202] * 4
    assert Upload.objects.filter(organization=world.bob.org).count() == 4
