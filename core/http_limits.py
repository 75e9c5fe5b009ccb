"""Bounds on HTTP connections, below the ASGI app (issue 10 item 6; OWASP API4).

uvicorn's httptools protocol accepts a request head of any size and any number of headers,
waits forever for a head that trickles in (or for a first byte that never comes), and accepts
connections until the process runs out of file descriptors. ``LimitedHttpToolsProtocol``
(`uvicorn --http core.http_limits:LimitedHttpToolsProtocol`) bounds each of those:

- the request head (request line and headers): at most HTTP_MAX_HEAD_BYTES bytes and
  HTTP_MAX_HEADERS headers → `431` (RFC 6585 §5), connection closed;
- the time from connection (or the first byte of a keep-alive connection's next request) to a
  complete head: HTTP_HEAD_TIMEOUT_SECONDS → `408`, closed; idle keep-alive stays uvicorn's
  `--timeout-keep-alive`;
- connections per process: HTTP_MAX_CONNECTIONS → `503` with Retry-After at once, closed.

The body's idle time is the ASGI layer's (core/body_timeout.py): the app is reading it then.
These answers are plain text: no request id or problem body exists before a request does.

This module imports nothing that needs Django set up (settings are read per connection):
uvicorn's worker processes (`--workers N`) import the protocol class before the app module
that sets Django up.
"""

from __future__ import annotations

import asyncio

from django.conf import settings
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


def _refusal(status: int, reason: str, detail: str, *extra: str) -> bytes:
    body = detail.encode()
    head = [f"HTTP/1.1 {status} {reason}", "content-type: text/plain; charset=utf-8",
            f"content-length: {len(body)}", "connection: close", *extra]  # fmt: skip
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with bounded heads, head time and connections (module doc)."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._in_head = True  # the bytes arriving belong to a request head
        self._head_bytes = 0
        self._header_count = 0
        self._head_timer: asyncio.TimerHandle | None = None
        if len(self.connections) > settings.HTTP_MAX_CONNECTIONS:
            retry = f"retry-after: {settings.BACKEND_RETRY_AFTER_SECONDS}"
            self._refuse(_refusal(503, "Service Unavailable", "Too many connections to this server.", retry))
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:  # count the head before the parser sees (and buffers) it
            end = data.find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else end + 4
            if self._head_bytes > settings.HTTP_MAX_HEAD_BYTES:
                detail = f"The request head exceeds {settings.HTTP_MAX_HEAD_BYTES} bytes."
                self._refuse(_refusal(431, "Request Header Fields Too Large", detail))
                return
        super().data_received(data)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        if self._header_count <= settings.HTTP_MAX_HEADERS:
            super().on_header(name, value)

    def on_message_begin(self) -> None:
        self._in_head = True
        if self._head_timer is None:
            self._arm_head_timer()  # the first byte of a keep-alive connection's next request
        super().on_message_begin()

    def on_message_complete(self) -> None:
        self._in_head = True  # what follows a whole request is the next one's head
        super().on_message_complete()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._disarm_head_timer()
        self._head_bytes, count, self._header_count = 0, self._header_count, 0
        if count > settings.HTTP_MAX_HEADERS:
            detail = f"The request has more than {settings.HTTP_MAX_HEADERS} header fields."
            self._refuse(_refusal(431, "Request Header Fields Too Large", detail))
            return
        super().on_headers_complete()

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(settings.HTTP_HEAD_TIMEOUT_SECONDS, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        detail = f"No complete request head within {settings.HTTP_HEAD_TIMEOUT_SECONDS} s."
        self._refuse(_refusal(408, "Request Timeout", detail))

    def _refuse(self, response: bytes) -> None:
        self._disarm_head_timer()
        if not self.transport.is_closing():
            self.transport.write(response)
            self.transport.close()
