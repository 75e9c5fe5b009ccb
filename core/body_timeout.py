"""The request body's idle time, bounded in the ASGI layer (issue 10 item 6; the connection's
other bounds are core/http_limits.py's, below the app)."""

from __future__ import annotations

import asyncio
import time

from django.conf import settings

from core.asgi import ASGIApp, Message, Receive, Scope, Send
from core.errors import ApiError
from core.problems import send_problem


class BodyIdleTimeout:
    """ASGI layer: a request body that sends nothing for HTTP_BODY_IDLE_TIMEOUT_SECONDS ends.

    The app's ``receive()`` then returns `http.disconnect`, so it cleans up as for a client that
    left (an upload's objects and row go, its request id is free again); once the app has
    returned, the client gets `408` (when no answer was started) and the connection is closed.
    Only the body is timed: waiting for a disconnect while streaming an answer is not.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        idle_s = float(settings.HTTP_BODY_IDLE_TIMEOUT_SECONDS)
        body_done = False
        timed_out = False
        started = False

        async def timed_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done or timed_out:
                return await receive() if not timed_out else {"type": "http.disconnect"}
            try:
                message = await asyncio.wait_for(receive(), idle_s)
            except TimeoutError:
                timed_out = True
                return {"type": "http.disconnect"}
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        began = time.monotonic()
        await self.app(scope, timed_receive, tracked_send)
        if timed_out and not started:
            detail = f"The request body sent nothing for {idle_s:g} s (after {time.monotonic() - began:.0f} s)."
            await send_problem(send, ApiError(408, detail, slug="body-timeout", headers=[("Connection", "close")]))
