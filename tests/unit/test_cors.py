"""core.cors: the shortcut for requests without an Origin gives CorsMiddleware's own headers."""

from __future__ import annotations

import pytest
from django.http import HttpResponse

from core import cors


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "headers": headers}


@pytest.mark.parametrize("path", ["/api/v2/dicomweb/studies", "/api/v2/fhir/metadata", "/healthz", "/admin/"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
def test_a_request_without_origin_gets_what_cors_middleware_adds(method: str, path: str) -> None:
    headers = [(b"accept", b"application/dicom+json"), (b"authorization", b"Bearer x")]
    request = cors._request(_scope(method, path, headers))
    expected = cors._cors.add_response_headers(request, HttpResponse())
    expected_pairs = [
        (name.lower().encode(), value.encode())
        for name, value in expected.items()
        if name.lower().startswith("access-control-") or name.lower() == "vary"
    ]
    assert cors.cors_headers(_scope(method, path, headers)) == (False, expected_pairs)


def test_a_request_with_origin_still_goes_through_the_whole_decision() -> None:
    headers = [(b"origin", b"https://viewer.example"), (b"access-control-request-method", b"GET")]
    preflight, pairs = cors.cors_headers(_scope("OPTIONS", "/api/v2/dicomweb/studies", headers))
    assert preflight and (b"vary", b"origin") in pairs
