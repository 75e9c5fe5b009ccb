"""core.links: absolute links from the request's own scheme, host and port, or the public URL."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from core.errors import ApiError
from core.links import base_from_request, base_from_scope


def scope(host: bytes | None, scheme: str = "http", server: tuple[str, int] = ("127.0.0.1", 8101)) -> dict[str, object]:
    headers = [(b"host", host)] if host is not None else []
    return {"type": "http", "scheme": scheme, "headers": headers, "server": server}


@override_settings(PRIZMED_PUBLIC_URL="", ALLOWED_HOSTS=["127.0.0.1", "localhost"])
def test_it_uses_the_requests_own_scheme_host_and_port() -> None:
    assert base_from_scope(scope(b"127.0.0.1:8101")) == "http://127.0.0.1:8101"
    assert base_from_scope(scope(b"localhost", scheme="https")) == "https://localhost"
    assert base_from_scope(scope(b"localhost:9", scheme="wss")) == "https://localhost:9"
    assert base_from_scope(scope(None)) == "http://127.0.0.1:8101"
    assert base_from_scope(scope(None, server=("127.0.0.1", 80))) == "http://127.0.0.1"
    request = RequestFactory().get("/api/v2/studies", HTTP_HOST="localhost:8101")
    assert base_from_request(request) == "http://localhost:8101"


@override_settings(PRIZMED_PUBLIC_URL="", ALLOWED_HOSTS=["127.0.0.1"])
@pytest.mark.parametrize("host", [b"evil.example", b"evil.example:8101", b""])
def test_it_refuses_a_host_it_does_not_serve(host: bytes) -> None:
    with pytest.raises(ApiError) as raised:
        base_from_scope(scope(host))
    assert (raised.value.status, raised.value.slug) == (400, "bad-host")


@override_settings(PRIZMED_PUBLIC_URL="https://pacs.example.org/prizmed", ALLOWED_HOSTS=["127.0.0.1"])
def test_a_configured_public_url_wins() -> None:
    assert base_from_scope(scope(b"127.0.0.1:8101")) == "https://pacs.example.org/prizmed"
    request = RequestFactory().get("/api/v2/studies", HTTP_HOST="127.0.0.1")
    assert base_from_request(request) == "https://pacs.example.org/prizmed"
