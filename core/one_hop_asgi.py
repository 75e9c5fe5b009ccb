"""Django under ASGI in one thread hop per request.

Django's own ASGIHandler runs an async middleware chain: every sync middleware hook, the view
and both request signals each hop to a fresh per-request thread (~17 hand-offs for our
middleware): 2.9-4.2 ms of CPU for a bare request here, against 0.4 ms with this handler
(docs/benchmarks.md). Every view and middleware of ours is sync, so this handler reads the
(small: uploads are consumers) body on the event loop, then runs the whole sync request, as
WSGI would, in one call on a pooled thread, and sends the response from the loop.

It subclasses ASGIHandler and calls BaseHandler's request machinery (create_request,
get_response, send_response): the shortcut fenced here. tests/unit/test_one_hop_asgi.py holds
its answers and request signals equal to Django's own handler; tests/unit/test_framework_fences.py
fails when Django leaves the release it was reviewed for.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponseBase
from django.urls import set_script_prefix

from core.asgi import Scope


class OneHopASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            # A thread of the loop's pool, so concurrent requests run side by side; the whole
            # request (signals, middleware, view, close) stays on it, so its database connection
            # is used by one thread only. (A pool of Django's own measured ~0.5 ms slower.)
            response = await sync_to_async(self._respond, thread_sensitive=False)(scope, body_file)
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:  # only WhiteNoise's static files, which touch no database
                    await sync_to_async(response.close, thread_sensitive=False)()
        finally:
            body_file.close()

    def _respond(self, scope: Scope, body_file: Any) -> HttpResponseBase:
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)  # a response: a bad request
        if request is not None:
            response = self.get_response(request)
        assert response is not None
        # As Django's handlers do; response.close() reads it (the fenced internals, module docstring).
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # noqa: SLF001
        if not response.streaming:
            # The content is already bytes: close now, on this thread, so request_finished
            # hands this thread's database connection back to the pool.
            response.close()
        return response
