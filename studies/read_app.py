"""`GET /studies/{uid}` and `GET /studies/{uid}/series` (API.md §3, §4) on raw ASGI, as the
DICOMweb reads are: the API's hottest reads, answered without Django's handler, its middleware
chain and DRF (~0.6 ms of CPU a request, docs/benchmarks.md).

``StudyReads`` takes GET and HEAD of those two paths; every other method (DELETE, OPTIONS, a
405) and every request only Django answers alike (core/view_parity.py: cookies, a refused Host,
an HTTPS redirect, content negotiation beyond plain JSON) go to Django's handler, where the DRF
views (studies/views.py) serve them and describe both routes in the OpenAPI document. Behind
the same CORS, key check, rate limit and usage count as every consumer (prizmed/routing.py),
``StudyReadApp`` answers what the DRF view answers: the same bodies (one ``study_read``, rendered
by DRF's JSONRenderer), the same headers (Allow, Django's security headers) and the same RFC 9457
problems, byte for byte; `bench/read_path.py --compare-answers` sends both a matrix of requests.
"""

from __future__ import annotations

import logging
from typing import Any

from channels.db import database_sync_to_async
from rest_framework.renderers import JSONRenderer

from accounts.models import APIKey
from core.asgi import ASGIApp, Receive, Scope, Send
from core.errors import ApiError, server_failure, unauthorized
from core.problems import CONTENT_TYPE as PROBLEM
from core.problems import problem_body
from core.view_parity import needs_django, view_headers
from studies.views import study_read, study_uid_checked

log = logging.getLogger("prizmed.errors")

# The route (Django's `studies/<str:study_uid>[/series]`, studies/urls.py), for Channels' URLRouter.
STUDY_READ_PATH = r"^api/v2/studies/(?P<study_uid>[^/]+)(?P<series>/series)?$"
_SERVED = frozenset({"GET", "HEAD"})
# The Allow header of each DRF view's answers (every method its URL serves).
_ALLOW = {False: b"GET, DELETE, HEAD, OPTIONS", True: b"GET, HEAD, OPTIONS"}
_JSON = JSONRenderer()
_study_read = database_sync_to_async(study_read, thread_sensitive=False)


class StudyReads:
    """The route's dispatch: GET and HEAD to ``reads`` unless Django must answer, else ``django``."""

    def __init__(self, reads: ASGIApp, django: ASGIApp) -> None:
        self.reads, self.django = reads, django

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] in _SERVED and not needs_django(scope):
            await self.reads(scope, receive, send)
        else:
            await self.django(scope, receive, send)


class StudyReadApp:
    """One study's metadata or its series, for the key ApiKeyMiddleware left in the scope."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kwargs = scope["url_route"]["kwargs"]
        series = "series" in kwargs  # Channels leaves out a group that did not match
        status, headers = 200, [(b"content-type", b"application/json")]
        try:
            body = await _answer(scope.get("api_key"), kwargs["study_uid"], series=series)
        except ApiError as exc:
            status, body = exc.status, problem_body(exc)
            headers = [(b"content-type", PROBLEM.encode()), *_encoded(exc.headers)]
        except Exception as exc:  # as the DRF view's exception handler: logged, never shown
            log.exception("unhandled error")
            error = server_failure(cause=exc)
            status, body = error.status, problem_body(error)
            headers = [(b"content-type", PROBLEM.encode()), *_encoded(error.headers)]
        raw = _JSON.render(body)
        headers += [(b"allow", _ALLOW[series]), *view_headers(scope), (b"content-length", str(len(raw)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})  # HEAD: the server sends no body


async def _answer(key: APIKey | None, study_uid: str, *, series: bool) -> dict[str, Any]:
    """The DRF view's checks in its order: a key (401), the UID (400, no thread hop), the study."""
    if key is None:
        raise unauthorized()
    body: dict[str, Any] = await _study_read(
        organization=key.organization, study_uid=study_uid_checked(study_uid), series=series
    )
    return body


def _encoded(headers: tuple[tuple[str, str], ...]) -> list[tuple[bytes, bytes]]:
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
