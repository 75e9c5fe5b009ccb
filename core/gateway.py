"""Outermost ASGI layer: the request id and the access log, for Django and consumers alike.

`X-Request-Id` must be a UUID v4 when given (400 otherwise); it is generated when absent,
echoed on every response and bound to every log line written while the request runs.
"""

from __future__ import annotations

import logging
import time
import uuid

from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import bad_request
from core.headers import header, parse_uuid4
from core.logs import current_request_id
from core.problems import refuse_websocket, send_problem

log = logging.getLogger("prizmed.access")


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = header(scope, b"x-request-id")
        valid = given is None or parse_uuid4(given) is not None
        # A malformed id is never reflected back (it is caller-controlled text): a fresh one is used.
        request_id = given.lower() if given is not None and valid else str(uuid.uuid4())
        token = current_request_id.set(request_id)
        started = time.monotonic()
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                status.append(message["status"])
                message = dict(message, headers=[*message.get("headers", []), (b"x-request-id", request_id.encode())])
            await send(message)

        try:
            if not valid:
                refusal = bad_request("X-Request-Id must be a UUID v4.", slug="bad-request-id")
                if scope["type"] == "websocket":
                    await refuse_websocket(scope, receive, send_with_id, refusal, close_code=1008)
                    return
                await send_problem(send_with_id, refusal)
                return
            await self.app(dict(scope, request_id=request_id), receive, send_with_id)
        finally:
            log.info(
                "%s %s",
                scope.get("method", "WS"),
                scope["path"],
                extra={
                    "status": status[0] if status else None,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                    "client": (scope.get("client") or ["-"])[0],
                },
            )
            current_request_id.reset(token)
