"""The ASGI app behind /api/v2/dicomweb (routed in prizmed/routing.py, behind CORS and the key
check): every DICOMweb resource is served here, on raw ASGI messages, because stores and
retrievals stream bodies of any size and Django's handler would hold them whole."""

from __future__ import annotations

import logging

from core.asgi import Receive, Scope, Send
from core.errors import ApiError, forbidden, method_not_allowed, not_found, server_failure, unauthorized
from core.links import DICOMWEB_PATH
from core.problems import send_problem
from dicomweb.request import ORGANIZATION, READ_ONLY, Request
from dicomweb.routes import route_match

log = logging.getLogger("prizmed.dicomweb")


class DicomwebApp:
    """Dispatch on (method, path) to the handler of dicomweb/routes.py; answer problems."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = [False]

        async def tracked(message: dict[str, object]) -> None:
            if message["type"] == "http.response.start":
                started[0] = True
            await send(message)

        try:
            await self._dispatch(scope, receive, tracked)
        except ApiError as exc:
            if started[0]:
                raise
            await send_problem(send, exc)
        except Exception:
            if started[0]:
                raise  # mid-body: the connection is cut, the client sees a short answer
            log.exception("DICOMweb request failed")
            await send_problem(send, server_failure())

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope.get("api_key")
        if key is not None:
            scope = dict(scope, **{ORGANIZATION: key.organization})
        elif scope.get(ORGANIZATION) is None:
            raise unauthorized()
        elif scope["method"] not in READ_ONLY:
            # A dashboard viewer session (dashboard/viewer_access.py) reads, never stores.
            raise forbidden("The viewer's session can only read.")
        routes, params = route_match(scope["path"][len(DICOMWEB_PATH) :])
        if not routes:
            raise not_found()
        route = next((r for r in routes if r.method == scope["method"]), None)
        if route is None:
            raise method_not_allowed(", ".join(sorted({r.method for r in routes})))
        await route.handler(Request(scope, receive, send, params))
