"""core/view_parity.py: the headers Django's middleware adds, for plain and secure requests,
and which requests only Django answers alike (tests/test_study_reads_parity.py compares whole
answers)."""

from __future__ import annotations

from typing import Any

from django.test import override_settings

from core.view_parity import needs_django, request_is_secure, view_headers

PROXY = {"SECURE_PROXY_SSL_HEADER": ("HTTP_X_PROXY_PROTO", "https")}


def scope(*headers: tuple[bytes, bytes], scheme: str = "http", query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "method": "GET", "scheme": scheme, "path": "/api/v2/studies/1.2",
            "query_string": query, "headers": [(b"host", b"localhost"), *headers]}  # fmt: skip


def test_it_adds_djangos_security_headers() -> None:
    assert dict(view_headers(scope())) == {
        b"x-content-type-options": b"nosniff",
        b"referrer-policy": b"same-origin",
        b"cross-origin-opener-policy": b"same-origin",
        b"x-frame-options": b"DENY",
    }


@override_settings(SECURE_HSTS_SECONDS=3600, **PROXY)
def test_it_adds_hsts_to_secure_requests_only() -> None:
    assert request_is_secure(scope((b"x-proxy-proto", b"https, http")))
    assert not request_is_secure(scope((b"x-proxy-proto", b"http"), scheme="https"))
    assert dict(view_headers(scope((b"x-proxy-proto", b"https"))))[b"strict-transport-security"] == b"max-age=3600"
    assert b"strict-transport-security" not in dict(view_headers(scope()))


def test_it_leaves_to_django_what_only_django_answers_alike() -> None:
    assert not needs_django(scope())
    assert not needs_django(scope((b"accept", b"application/json"), query=b"unknown=1"))
    assert needs_django(scope((b"cookie", b"sessionid=x")))
    assert needs_django(scope((b"accept", b"text/html")))
    assert needs_django(scope(query=b"format=json"))
    assert needs_django({**scope(), "headers": [(b"host", b"forged.example")]})
    assert needs_django({**scope(), "headers": []})
    with override_settings(SECURE_SSL_REDIRECT=True, **PROXY):
        assert needs_django(scope())
        assert not needs_django(scope((b"x-proxy-proto", b"https")))
