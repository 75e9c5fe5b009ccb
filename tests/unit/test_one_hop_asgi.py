"""core.one_hop_asgi: the same answers and request signals as Django's own ASGIHandler."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from django.core import signals
from django.core.handlers.asgi import ASGIHandler

from core.one_hop_asgi import OneHopASGIHandler

# Django warns that WhiteNoise hands its handler a synchronous iterator; ours sends it from a thread.
pytestmark = pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators")

REQUESTS = [
    ("GET", "/healthz", b"", []),  # a plain Django view
    ("GET", "/api/v2/no/such/thing", b"", []),  # the /api/ catch-all: a problem body
    ("POST", "/api/v2/organization", b'{"a": 1}', [(b"content-type", b"application/json")]),  # a DRF 401
    ("GET", "/admin/", b"", []),  # sessions and auth middleware: a redirect to the login page
    ("GET", "/static/admin/css/base.css", b"", []),  # WhiteNoise: a streaming file response
]


@pytest.fixture
def fired() -> Iterator[list[str]]:
    seen: list[str] = []

    def started(**kwargs: Any) -> None:
        seen.append("request_started")

    def finished(**kwargs: Any) -> None:
        seen.append("request_finished")

    signals.request_started.connect(started)
    signals.request_finished.connect(finished)
    yield seen
    signals.request_started.disconnect(started)
    signals.request_finished.disconnect(finished)


def answer(handler: Any, method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"localhost"), *headers], "client": ("127.0.0.1", 50000), "server": ("localhost", 80),
    }  # fmt: skip
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": body[:3], "more_body": True},
        {"type": "http.request", "body": body[3:]},
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        await asyncio.Event().wait()  # the client stays connected (Django listens for a disconnect)
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(handler(scope, receive, send))
    start = sent[0]
    return {
        "status": start["status"],
        "headers": sorted(start["headers"]),
        "body": b"".join(m.get("body", b"") for m in sent[1:]),
    }


@pytest.mark.parametrize(("method", "path", "body", "headers"), REQUESTS, ids=[r[1] for r in REQUESTS])
def test_it_answers_as_djangos_handler_does(
    fired: list[str], method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    ours = answer(OneHopASGIHandler(), method, path, body, headers)
    ours_signals, fired[:] = list(fired), []
    django = answer(ASGIHandler(), method, path, body, headers)

    assert ours == django
    assert ours_signals == fired == ["request_started", "request_finished"]
