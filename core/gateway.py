"""Outermost ASGI layer: the request id and the access log, for Django and consumers alike.

`X-Request-Id` must be a UUID v4 when given (400 otherwise); it is generated when absent,
echoed on every response and bound to every log line written while the request runs. Every
response that does not set its own caching gets `Cache-Control: no-store` here, the one place
that sees Django's and the consumers' answers alike (core/headers.py, docs/security.md).
"""

from __future__ import annotations

import logging
import time
import uuid

from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import bad_request, server_failure
from core.headers import header, parse_uuid4, with_no_store
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
                headers = with_no_store([*message.get("headers", []), (b"x-request-id", request_id.encode())])
                message = dict(message, headers=headers)
            await send(message)

        accepted: list[bool] = []

        async def send_tracked(message: Message) -> None:
            if message["type"] == "websocket.accept":
                accepted.append(True)
            await send_with_id(message)

        try:
            if not valid:
                refusal = bad_request("X-Request-Id must be a UUID v4.", slug="bad-request-id")
                if scope["type"] == "websocket":
                    await refuse_websocket(scope, receive, send_with_id, refusal, close_code=1008)
                    return
                await send_problem(send_with_id, refusal)
                return
            await self.app(dict(scope, request_id=request_id), receive, send_tracked)
        except Exception as exc:
            # Escaped every handler: answer with a problem rather than the server's text/plain
            # 500 (a backend down is a 503 with Retry-After), when nothing was sent yet.
            if status or accepted:
                raise  # the response is under way: the server ends the connection
            await self._failed(scope, send_tracked, exc)
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

    @staticmethod
    async def _failed(scope: Scope, send: Send, exc: Exception) -> None:
        error = server_failure(cause=exc)
        if error.status == 503:
            log.warning("%s: %r", error.detail, exc)
        else:
            log.error("unhandled error", exc_info=exc)
        if scope["type"] == "http":
            await send_problem(send, error)
        elif "websocket.http.response" in scope.get("extensions", {}):

            async def as_websocket(message: Message) -> None:  # the handshake refused with the problem
                await send({**message, "type": f"websocket.{message['type']}"})

            await send_problem(as_websocket, error)
        else:  # RFC 6455 §7.4.1: 1013 try again later (backend down), 1011 a server failure
            await send({"type": "websocket.close", "code": 1013 if error.status == 503 else 1011})
