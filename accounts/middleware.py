"""Authenticate the Bearer key and apply the organization's rate limit, for every request under
/api/v2/ and /ws/v2/.

One check (``_authenticate_and_count``) in two wrappers: ``ApiKeyMiddleware`` in front of the
Channels consumers (ASGI), ``ApiKeyDjangoMiddleware`` first in Django's chain, where it runs on
the request's own thread instead of a thread hop of its own (~0.25 ms per request). In front of
the consumers, a key this process verified moments ago (accounts/key_cache.py) is only counted,
on the event loop, with no thread hop at all. The key (or None) is left on the request
(``scope["api_key"]``, ``request.api_key``); whoever serves the route decides whether one is
required. A request presenting a key that is not valid (malformed, unknown, revoked, expired, or
any key in the URL) counts against its client address:
past PRIZMED_AUTH_FAILURES_PER_MINUTE it gets a 429 instead of its 401, and the crossing is
audited as a Security Alert (docs/security.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

from accounts.audit.log import Attempt, audit_append_unauthenticated
from accounts.auth import key_authenticate, key_cached
from accounts.key_watch import serve_while_key_active
from accounts.keys import PRODUCT_PREFIX
from accounts.models import APIKey
from accounts.ratelimit import RateDecision, auth_failure_hit, rate_hit, rate_hit_async
from accounts.usage import usage_count
from core import clock
from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import ApiError
from core.headers import header
from core.logs import current_request_id
from core.problems import problem_response, refuse_websocket, send_problem

log = logging.getLogger("prizmed.auth")
PROTECTED_PREFIXES = ("/api/v2/", "/ws/v2/")
RATE_LIMITED = "The organization's request rate limit is reached."
TOO_MANY_FAILURES = "Too many failed authentications from this address; try again later."
AUTH_FAILURES = "auth.failures"  # the audit action of a Security Alert (DCM 110113)
RateHeaders = list[tuple[str, str]]


def rate_limited(decision: RateDecision) -> ApiError:
    return ApiError(429, RATE_LIMITED, slug="rate-limited", headers=decision.headers())


def _authenticate_and_count(
    authorization: str | None, query: bytes, client_address: str, user_agent: str
) -> tuple[APIKey | None, RateHeaders, ApiError | None]:
    """The key (or None), the organization's rate-limit headers, and the refusal to answer with
    at once (the organization's rate limit, or too many failed authentications) or None."""
    # A key in a URL ends up in proxy logs and browser history: refuse it outright.
    key_in_url = PRODUCT_PREFIX.encode() in query
    key = None if key_in_url else key_authenticate(authorization)
    if key is None and (authorization or key_in_url):
        attempt = Attempt(authorization, current_request_id.get(), client_address, user_agent)
        return None, [], _authentication_failed(attempt)
    if key is None:  # no credentials at all: nothing to guess with (or a viewer cookie, checked later)
        return None, [], None
    plan = key.organization.plan
    decision = rate_hit(organization_id=key.organization_id, per_minute=plan.requests_per_minute, now=clock.now())
    return key, decision.headers(), None if decision.allowed else rate_limited(decision)


async def _count(key: APIKey) -> tuple[RateHeaders, ApiError | None]:
    """``_authenticate_and_count``'s rate-limit step for a key already verified."""
    per_minute = key.organization.plan.requests_per_minute
    decision = await rate_hit_async(organization_id=key.organization_id, per_minute=per_minute, now=clock.now())
    return decision.headers(), None if decision.allowed else rate_limited(decision)


def _authentication_failed(attempt: Attempt) -> ApiError | None:
    """Count a request whose key is not valid against its client address (not its tenant: a
    valid key is never refused for others' failures; requests without credentials, such as the
    dashboard viewer's cookie-authorized ones, are not counted). Over the limit the request gets a 429
    instead of its 401, and crossing it writes one Security Alert audit entry per window."""
    try:
        decision = auth_failure_hit(
            client_address=attempt.client_address, per_minute=settings.PRIZMED_AUTH_FAILURES_PER_MINUTE, now=clock.now()
        )
    except Exception:  # fails open: the request is refused (401) all the same
        log.warning("failed-authentication counter unavailable", exc_info=True)
        return None
    if decision.allowed:
        return None
    if decision.remaining == -1:  # the failure that crossed the limit
        audit_append_unauthenticated(action=AUTH_FAILURES, outcome="security-alert", status_code=429, attempt=attempt)
    retry_after = [("Retry-After", str(decision.retry_after))]
    return ApiError(429, TOO_MANY_FAILURES, slug="too-many-failed-authentications", headers=retry_after)


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Wraps only the API's consumers (prizmed/routing.py): every path here is protected.
        authorization, query = header(scope, b"authorization"), scope.get("query_string", b"")
        cached = None if PRODUCT_PREFIX.encode() in query else key_cached(authorization)
        if cached is not None:  # verified moments ago: counted on the loop, no thread hop
            key, pairs, refusal = cached, *await _count(cached)
        else:
            key, pairs, refusal = await database_sync_to_async(_authenticate_and_count)(
                authorization, query, (scope.get("client") or [""])[0], header(scope, b"user-agent") or ""
            )
        scope = dict(scope, api_key=key)
        if refusal is not None:
            if key is not None:
                usage_count(key.organization_id, status=refusal.status)
            if scope["type"] == "websocket":
                await refuse_websocket(scope, receive, send, refusal, close_code=1013)
                return
            await send_problem(send, refusal)
            return
        if pairs:
            send = _with_headers(send, [(k.lower().encode(), v.encode()) for k, v in pairs])
        # What may stay open for long (a WebSocket, an SSE stream answers a GET) ends when its
        # key is revoked or expires; uploads over HTTP end by themselves.
        if key is not None and (scope["type"] == "websocket" or scope.get("method") == "GET"):
            await serve_while_key_active(self.app, scope, receive, send, key)
            return
        await self.app(scope, receive, send)


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = dict(message, headers=[*message.get("headers", []), *extra])
        await send(message)

    return send_with_headers


class ApiKeyDjangoMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if not request.path.startswith(PROTECTED_PREFIXES):
            return self.get_response(request)
        key, pairs, refusal = _authenticate_and_count(
            request.headers.get("Authorization"),
            request.META.get("QUERY_STRING", "").encode(),
            request.META.get("REMOTE_ADDR", ""),
            request.headers.get("User-Agent", ""),
        )
        request.api_key = key  # type: ignore[attr-defined]  # read by accounts.authentication
        if refusal is not None:
            if key is not None:
                usage_count(key.organization_id, status=refusal.status)
            return problem_response(refusal)
        response = self.get_response(request)
        for name, value in pairs:
            response[name] = value
        if key is not None:
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
