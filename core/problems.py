"""RFC 9457 problem details: the one shape of every error under /api/.

An ApiError (core/errors.py) is rendered here once for DRF (``drf_exception_handler``, which
also turns DRF's own exceptions into the same body), once for Django views and middleware
(``problem_response``) and once for raw ASGI apps (``send_problem``). Every body carries the
request id so a caller can quote it to support.
"""

from __future__ import annotations

import json
import logging
from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.csrf import csrf_exempt
from django.views.defaults import bad_request, page_not_found, permission_denied, server_error
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from core.asgi import Message, Receive, Scope, Send
from core.errors import ApiError, invalid_parameters, not_found, server_failure, unauthorized
from core.logs import current_request_id

CONTENT_TYPE = "application/problem+json"
log = logging.getLogger("prizmed.errors")


def problem_body(error: ApiError) -> dict[str, Any]:
    title = HTTPStatus(error.status).phrase
    body: dict[str, Any] = {
        "type": f"/problems/{error.slug or title.lower().replace(' ', '-')}",
        "title": title,
        "status": error.status,
        "detail": error.detail,
        "request_id": current_request_id.get(),
    }
    body.update(error.extra)
    return body


def problem_response(error: ApiError) -> JsonResponse:
    """The problem as a Django response (middleware, Django's error handlers)."""
    return JsonResponse(
        problem_body(error), status=error.status, content_type=CONTENT_TYPE, headers=dict(error.headers)
    )


async def send_problem(send: Send, error: ApiError) -> None:
    """Answer a raw ASGI HTTP request with the problem (consumers and middleware)."""
    body = json.dumps(problem_body(error)).encode()
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers]
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def refuse_websocket(scope: Scope, receive: Receive, send: Send, error: ApiError, *, close_code: int) -> None:
    """Refuse a WebSocket handshake: the problem as an HTTP response when the server offers ASGI's
    websocket.http.response extension (uvicorn does), else a close with ``close_code``. The
    connect message is read first, and the handshake always answered: a refusal is the client's
    error, and servers log a handshake the app left unanswered at ERROR."""
    if (await receive())["type"] != "websocket.connect":
        return
    if "websocket.http.response" not in scope.get("extensions", {}):
        await send({"type": "websocket.close", "code": close_code})
        return

    async def as_websocket(message: Message) -> None:
        await send({**message, "type": f"websocket.{message['type']}"})

    await send_problem(as_websocket, error)


async def websocket_not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """The WebSocket router's last route: an unknown path is a 404, not a routing exception (500)."""
    await refuse_websocket(scope, receive, send, not_found(), close_code=1008)


def drf_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's EXCEPTION_HANDLER: an ApiError as it is, DRF's own exceptions (authentication,
    permissions, methods, serializer validation) as the same problem body."""
    if isinstance(exc, ApiError):
        return Response(problem_body(exc), status=exc.status, headers=dict(exc.headers), content_type=CONTENT_TYPE)
    response = exception_handler(exc, context)  # DRF's, for its headers (WWW-Authenticate, Allow, ...)
    if response is None:  # not a DRF/Django exception: a bug or a backend down; log it, never show it
        log.exception("unhandled error", exc_info=exc)
        error = server_failure(cause=exc)
        response = Response(status=error.status, headers=dict(error.headers))
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        error = unauthorized()
        response["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, exceptions.ValidationError):
        error = invalid_parameters(response.data)
    elif isinstance(exc, exceptions.APIException):
        error = ApiError(response.status_code, str(exc.detail))
    else:
        error = ApiError(response.status_code, HTTPStatus(response.status_code).phrase)
    response.data = problem_body(error)
    response.content_type = CONTENT_TYPE
    return response


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def not_found_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler404: a problem under /api/, Django's page elsewhere."""
    if _is_api(request):
        return problem_response(not_found())
    return page_not_found(request, exception or Exception())


def server_failure_handler(request: HttpRequest) -> HttpResponse:
    """Django's handler500: a problem under /api/, Django's page elsewhere; a 503 with
    Retry-After when the failure being handled is an unreachable backend (core/backends.py)."""
    error = server_failure()
    if _is_api(request):
        return problem_response(error)
    if error.status == 503:
        return HttpResponse(error.detail, status=503, content_type="text/plain", headers=dict(error.headers))
    return server_error(request)


def bad_request_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler400 (a disallowed Host, an unreadable body): a problem under /api/."""
    if _is_api(request):
        return problem_response(ApiError(400, "The request is malformed."))
    return bad_request(request, exception or Exception())


def permission_denied_handler(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """Django's handler403: a problem under /api/, Django's page elsewhere."""
    if _is_api(request):
        return problem_response(ApiError(403, "This request is not allowed."))
    return permission_denied(request, exception or Exception())


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """CSRF_FAILURE_VIEW. API routes authenticate by Bearer key and are exempt from CSRF; this
    only guards that a route someone forgets to exempt still answers with a problem."""
    if _is_api(request):
        return problem_response(ApiError(403, "This request is not allowed."))
    return django_csrf_failure(request, reason)


@csrf_exempt  # a Bearer-authenticated API path: cookies carry no authority here, so no CSRF check
def api_not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    """Catch-all for unknown /api/ paths, whatever the method, so neither DEBUG nor the CSRF
    check answers with an HTML page."""
    return problem_response(not_found())
