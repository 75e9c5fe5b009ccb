"""Absolute links the service writes into answers: paging ``next``, FHIR references, DICOMweb
retrieval URLs (API.md, Common headers and errors).

One rule: the configured public URL (``PRIZMED_PUBLIC_URL``) when it is set — a deployment
behind a proxy that rewrites hosts or paths sets it — else the request's own scheme, host and
port. The Host header is checked against ``ALLOWED_HOSTS`` as Django checks it for views
(``validate_host``), so a forged Host never reaches a link a client will follow.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest
from django.http.request import split_domain_port, validate_host

from core.asgi import Scope
from core.errors import ApiError
from core.headers import header

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def base_from_scope(scope: Scope) -> str:
    """``scheme://host[:port]`` of a raw ASGI request (consumers), or the public URL.

    Raises ApiError 400 when the Host header is missing or not in ALLOWED_HOSTS."""
    if settings.PRIZMED_PUBLIC_URL:
        return str(settings.PRIZMED_PUBLIC_URL)
    given: str = scope.get("scheme") or "http"
    scheme = {"ws": "http", "wss": "https"}.get(given, given)
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server")
        if not server:
            raise ApiError(400, "The request has no Host header.", slug="bad-host")
        name, port = server
        host = name if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{name}:{port}"
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        raise ApiError(400, "The Host header names a host this service does not serve.", slug="bad-host")
    return f"{scheme}://{host}"


def base_from_request(request: HttpRequest) -> str:
    """``scheme://host[:port]`` of a Django request (its Host already validated by Django), or
    the public URL. Honours SECURE_PROXY_SSL_HEADER through ``request.scheme``."""
    if settings.PRIZMED_PUBLIC_URL:
        return str(settings.PRIZMED_PUBLIC_URL)
    return f"{request.scheme}://{request.get_host()}"


DICOMWEB_PATH = "/api/v2/dicomweb"


def dicomweb_path(study_uid: str, series_uid: str | None = None, sop_uid: str | None = None) -> str:
    """The path of a DICOMweb study, series or instance resource (PS3.18 §10.4.1), under
    ``DICOMWEB_PATH``; UIDs are digits and dots, so nothing needs escaping. Join it to
    ``base_from_scope`` / ``base_from_request`` for the absolute RetrieveURL."""
    path = f"{DICOMWEB_PATH}/studies/{study_uid}"
    if series_uid is not None:
        path += f"/series/{series_uid}"
        if sop_uid is not None:
            path += f"/instances/{sop_uid}"
    return path
