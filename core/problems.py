"""RFC 9457 problem details: the one shape of every error under /api/.

Views raise DRF exceptions or return `problem_response`; ASGI consumers call `send_problem`.
Every body carries the request id so a caller can quote it to support.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import page_not_found, server_error
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.logs import current_request_id

CONTENT_TYPE = "application/problem+json"
log = logging.getLogger("prizmed.errors")

Send = Callable[[dict[str, Any]], Awaitable[None]]


def problem_body(status: int, detail: str, *, slug: str | None = None, **extra: Any) -> dict[str, Any]:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"/problems/{slug or title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": current_request_id.get(),
    }
    body.update(extra)
    return body


def problem_response(status: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JsonResponse:
    body = problem_body(status, detail, **extra)
    return JsonResponse(body, status=status, content_type=CONTENT_TYPE, headers=headers)


async def send_problem(
    send: Send, status: int, detail: str, *, headers: Iterable[tuple[bytes, bytes]] = (), **extra: Any
) -> None:
    """Answer a raw ASGI HTTP request with a problem body (consumers and middleware)."""
    body = json.dumps(problem_body(status, detail, **extra)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


AUTH_DETAIL = "A valid API key is required: Authorization: Bearer <key>."


async def send_unauthorized(send: Send) -> None:
    """The 401 of a consumer route: the same body, whatever was wrong with the key."""
    await send_problem(send, 401, AUTH_DETAIL, headers=[(b"www-authenticate", b"Bearer")])


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    response = exception_handler(exc, context)
    if response is None:  # not a DRF/Django exception: a bug; log it, never show it
        log.exception("unhandled error", exc_info=exc)
        response = Response(status=500)
        detail, extra = "The server failed to handle this request.", dict[str, Any]()
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        # Never say whether the key was missing, malformed, unknown, revoked or expired.
        response["WWW-Authenticate"] = "Bearer"
        detail, extra = AUTH_DETAIL, {}
    elif isinstance(exc, exceptions.ValidationError):
        detail, extra = "The request has invalid parameters.", {"errors": response.data}
    elif isinstance(exc, exceptions.APIException):
        detail, extra = str(exc.detail), getattr(exc, "problem_extra", {})
    else:
        detail, extra = HTTPStatus(response.status_code).phrase, {}
    response.data = problem_body(response.status_code, detail, slug=getattr(exc, "slug", None), **extra)
    response.content_type = CONTENT_TYPE
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return problem_response(404, "No such resource.")
    return page_not_found(request, exception or Exception())


def server_failure(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return problem_response(500, "The server failed to handle this request.")
    return server_error(request)


def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Catch-all for unknown /api/ paths, so even DEBUG never answers with an HTML page."""
    return problem_response(404, "No such resource.")
