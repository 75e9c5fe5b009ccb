"""Authenticate the Bearer key and apply the organization's rate limit, for every request under
/api/v2/ and /ws/v2/.

One check (``_authenticate_and_count``) in two wrappers: ``ApiKeyMiddleware`` in front of the
Channels consumers (ASGI), ``ApiKeyDjangoMiddleware`` first in Django's chain, where it runs on
the request's own thread instead of a thread hop of its own (~0.25 ms per request). The key (or
None) is left on the request (``scope["api_key"]``, ``request.api_key``); whoever serves the
route decides whether one is required.
"""

from __future__ import annotations

from collections.abc import Callable

from channels.db import database_sync_to_async
from django.http import HttpRequest, HttpResponseBase

from accounts.auth import key_authenticate
from accounts.keys import PRODUCT_PREFIX
from accounts.models import APIKey
from accounts.ratelimit import RateDecision, rate_hit
from accounts.usage import usage_count
from core import clock
from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import ApiError
from core.headers import header
from core.problems import problem_response, send_problem

PROTECTED_PREFIXES = ("/api/v2/", "/ws/v2/")
RATE_LIMITED = "The organization's request rate limit is reached."


def rate_limited(decision: RateDecision) -> ApiError:
    return ApiError(429, RATE_LIMITED, slug="rate-limited", headers=decision.headers())


def _authenticate_and_count(authorization: str | None, query: bytes) -> tuple[APIKey | None, RateDecision | None]:
    # A key in a URL ends up in proxy logs and browser history: refuse it outright.
    if PRODUCT_PREFIX.encode() in query:
        return None, None
    key = key_authenticate(authorization)
    if key is None:
        return None, None
    plan = key.organization.plan
    decision = rate_hit(organization_id=key.organization_id, per_minute=plan.requests_per_minute, now=clock.now())
    return key, decision


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Wraps only the API's consumers (prizmed/routing.py): every path here is protected.
        key, decision = await database_sync_to_async(_authenticate_and_count)(
            header(scope, b"authorization"), scope.get("query_string", b"")
        )
        scope = dict(scope, api_key=key)
        if decision is None:
            await self.app(scope, receive, send)
            return
        rate_headers = [(k.lower().encode(), v.encode()) for k, v in decision.headers()]
        if not decision.allowed:
            usage_count(key.organization_id, status=429)  # type: ignore[union-attr]  # a decision has a key
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1013})
                return
            await send_problem(send, rate_limited(decision))
            return

        async def send_with_rate(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message, headers=[*message.get("headers", []), *rate_headers])
            await send(message)

        await self.app(scope, receive, send_with_rate)


class ApiKeyDjangoMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(PROTECTED_PREFIXES):
            return self.get_response(request)
        key, decision = _authenticate_and_count(
            request.headers.get("Authorization"), request.META.get("QUERY_STRING", "").encode()
        )
        request.api_key = key  # type: ignore[attr-defined]  # read by accounts.authentication
        if key is None:
            return self.get_response(request)
        if decision is not None and not decision.allowed:
            usage_count(key.organization_id, status=429)
            return problem_response(rate_limited(decision))
        response = self.get_response(request)
        for name, value in decision.headers() if decision is not None else ():
            response[name] = value
        body_out = 0 if response.streaming else len(response.content)  # type: ignore[attr-defined]
        usage_count(
            key.organization_id, status=response.status_code, bytes_in=_body_length(request), bytes_out=body_out
        )
        return response


def _body_length(request: HttpRequest) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0
