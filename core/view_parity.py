"""Answering on raw ASGI what a DRF view answers: for the hot reads served outside Django's
handler (studies/read_app.py) while a DRF view still describes the route (OpenAPI, OPTIONS,
the other methods).

Django's middleware adds to every view's answer headers that depend only on the settings and on
whether the request is secure (SecurityMiddleware, XFrameOptionsMiddleware): ``view_headers``
asks those middleware themselves, once per kind of request, so there is one configuration and
one implementation. What only Django's chain answers alike — a session or CSRF cookie
(SessionMiddleware and CsrfViewMiddleware set or clear cookies), a Host it refuses, an HTTPS
redirect, DRF's content negotiation beyond plain JSON (406, `?format=`, `; indent=`) — is
recognised by ``needs_django`` before anything is counted, and the caller hands such a request
to Django's handler whole.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port, validate_host
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware

from core.asgi import Scope

# Accept values DRF's JSON-only negotiation answers with plain application/json, as absent.
_PLAIN_ACCEPT = frozenset({None, b"*/*", b"application/json"})


def request_is_secure(scope: Scope) -> bool:
    """``HttpRequest.is_secure()`` for this scope: the TLS proxy's header when
    SECURE_PROXY_SSL_HEADER names one (its first value), else the connection's scheme."""
    proxy: tuple[str, str] | None = settings.SECURE_PROXY_SSL_HEADER
    if proxy is None:
        return bool(scope.get("scheme") == "https")
    meta_name, secure_value = proxy
    name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode("latin-1")
    value = next((v for k, v in scope.get("headers", ()) if k == name), None)
    if value is None:
        return bool(scope.get("scheme") == "https")
    return bool(value.decode("latin-1").split(",", 1)[0].strip() == secure_value)


def needs_django(scope: Scope) -> bool:
    """Whether only Django's handler answers this GET as the DRF view would (module docstring)."""
    host = accept = None
    for name, value in scope.get("headers", ()):
        if name == b"cookie":
            return True
        if name == b"host":
            host = value
        elif name == b"accept":
            accept = value
    if accept not in _PLAIN_ACCEPT or b"format=" in scope.get("query_string", b""):
        return True
    if host is None or settings.USE_X_FORWARDED_HOST:
        return True
    domain, _ = split_domain_port(host.decode("latin-1"))
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return True
    return bool(settings.SECURE_SSL_REDIRECT) and not request_is_secure(scope)


def view_headers(scope: Scope) -> list[tuple[bytes, bytes]]:
    """The headers Django's middleware adds to a view's answer to this request (HSTS on a
    secure one when configured, nosniff, Referrer-Policy, COOP, X-Frame-Options)."""
    return _view_headers(request_is_secure(scope))


class _Request(HttpRequest):
    """A request that is secure or not, which is all these middleware's answers depend on."""

    def __init__(self, secure: bool) -> None:
        super().__init__()
        self.secure = secure

    def is_secure(self) -> bool:
        return self.secure


@cache
def _view_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    request = _Request(secure)
    response = HttpResponse()
    before = set(response.headers)

    def answer(_: Any) -> HttpResponse:
        return response

    SecurityMiddleware(answer).process_response(request, response)
    XFrameOptionsMiddleware(answer).process_response(request, response)
    return [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in response.headers.items()
        if name not in before
    ]


def _settings_changed(**kwargs: Any) -> None:
    _view_headers.cache_clear()


setting_changed.connect(_settings_changed, dispatch_uid="core.view_parity")
