"""The ASGI app behind /api/v2/fhir (routed in prizmed/routing.py, behind the OperationOutcome
rewrite, CORS and the key check). Raw ASGI like the DICOMweb app: one dispatch on the route
table, content negotiation, then the interaction on a thread (it reads the database)."""

from __future__ import annotations

import logging

from channels.db import database_sync_to_async

from core.asgi import Receive, Scope, Send
from core.errors import ApiError, method_not_allowed, not_found, server_failure, unauthorized
from core.problems import send_problem
from fhir_rest.capabilities import FHIR_PATH
from fhir_rest.request import FhirRequest, negotiate, send_answer
from fhir_rest.routes import route_match

log = logging.getLogger("prizmed.fhir")


class FhirApp:
    """Dispatch on (method, path) to the interaction of fhir_rest/routes.py; refusals are
    problems here, made OperationOutcomes by fhir_rest.outcome.OperationOutcomeMiddleware."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._dispatch(scope, receive, send)
        except ApiError as exc:
            await send_problem(send, exc)
        except Exception:
            log.exception("FHIR request failed")
            await send_problem(send, server_failure())

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("api_key") is None:
            raise unauthorized()
        routes, params = route_match(scope["path"][len(FHIR_PATH) :])
        if not routes:
            raise not_found("No such FHIR resource type, interaction or operation here (see GET metadata).")
        route = next((r for r in routes if r.method == scope["method"]), None)
        if route is None:
            raise method_not_allowed(", ".join(sorted({r.method for r in routes})))
        req = FhirRequest(scope, receive, params)
        if route.method == "POST":
            await req.read_form()
        negotiate(scope, req.pairs())
        await send_answer(send, await database_sync_to_async(route.handler)(req))
