"""Issue 10 item 9: Unicode digits (``str.isdigit()`` accepts them, ``int()`` does not) in every
integer a client sends → 400 `bad-integer` naming the header or parameter, never a 500.

Headers are sent as Latin-1 bytes, so the server reads the superscript itself ("²" is 0xB2).
"""

from __future__ import annotations

import httpx
import pytest

from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.ingest_support import assert_nothing_left
from tests.support.world import World
from tests.test_auth import assert_problem

SUPERSCRIPTS = ["²", "¹²", "1²"]


def latin1(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {name.encode("latin-1"): value.encode("latin-1") for name, value in headers.items()}


def assert_bad_integer(response: httpx.Response, name: str) -> None:
    assert_problem(response, 400)
    body = response.json()
    assert (body["type"], body["parameter"]) == ("/problems/bad-integer", name), body


@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_chunk_seq_of_unicode_digits_is_400(server: live.Server, world: World, child_env, text: str) -> None:
    headers = latin1(
        {**world.bob.headers, "Content-Type": "application/dicom", "X-Stream-Id": "s", "X-Chunk-Seq": text}
    )
    response = httpx.post(f"{server.url}/api/v2/dicom/stream", content=make_instance(), headers=headers)
    assert_bad_integer(response, "X-Chunk-Seq")
    assert_nothing_left(child_env, world.bob.org)


@pytest.mark.parametrize("name", ["X-Record-Seq", "Last-Event-ID"])
@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_record_headers_of_unicode_digits_are_400(server: live.Server, world: World, name: str, text: str) -> None:
    headers = latin1({**world.bob.headers, "Accept": "text/event-stream", name: text})
    assert_bad_integer(httpx.get(f"{server.url}/api/v2/records/stream", headers=headers), name)


@pytest.mark.parametrize("name", ["since", "_count", "_cursor"])
@pytest.mark.parametrize("text", SUPERSCRIPTS)
def test_record_parameters_of_unicode_digits_are_400(server: live.Server, world: World, name: str, text: str) -> None:
    headers = {**world.bob.headers, "Accept": "application/fhir+json"}
    response = httpx.get(f"{server.url}/api/v2/records/stream", headers=headers, params={name: text})
    assert_bad_integer(response, name)
