"""ASGI entry point, served by uvicorn.

Streaming routes (DICOM upload, SSE) are Channels consumers on raw ASGI messages, because
Django's handler reads a whole request body before a view runs; so are DICOMweb, FHIR REST and
the study reads (their per-request cost); everything else is Django.
"""

from __future__ import annotations

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
django.setup(set_prefix=False)

# Imported after Django is set up: these modules import models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from core.asgi import Receive, Scope, Send  # noqa: E402
from core.body_timeout import BodyIdleTimeout  # noqa: E402
from core.gateway import RequestIdMiddleware  # noqa: E402
from core.malloc_tuning import malloc_thresholds_set  # noqa: E402
from core.metrics import HttpMetricsMiddleware  # noqa: E402
from core.one_hop_asgi import OneHopASGIHandler  # noqa: E402
from core.openapi import FHIR_PREFIX  # noqa: E402
from core.problems import websocket_not_found  # noqa: E402
from core.startup_gc import startup_heap_freeze  # noqa: E402
from core.tasks import start_embedded_beat  # noqa: E402
from fhir_rest.outcome import OperationOutcomeMiddleware  # noqa: E402
from prizmed.routing import http_routes, study_read_route, websocket_routes  # noqa: E402

malloc_thresholds_set()
start_embedded_beat()

django_handler = OneHopASGIHandler()
django_route = re_path(r"", django_handler)  # type: ignore[arg-type]  # an ASGI app, which URLRouter accepts
gateway = RequestIdMiddleware(
    BodyIdleTimeout(
        ProtocolTypeRouter(
            {
                "http": URLRouter([*http_routes, study_read_route(django_handler), django_route]),
                "websocket": URLRouter([*websocket_routes, re_path(r"", websocket_not_found)]),  # type: ignore[arg-type]  # an ASGI app
            }
        )
    )
)
# Under the FHIR API every error is an OperationOutcome, the gateway's own (a malformed X-Request-Id) too.
fhir_gateway = OperationOutcomeMiddleware(gateway)


async def by_error_family(scope: Scope, receive: Receive, send: Send) -> None:
    fhir = scope["type"] == "http" and scope["path"].startswith(FHIR_PREFIX)
    await (fhir_gateway if fhir else gateway)(scope, receive, send)


application = HttpMetricsMiddleware(by_error_family)

# Last: what is loaded by now lives as long as the process (core/startup_gc.py).
startup_heap_freeze()
