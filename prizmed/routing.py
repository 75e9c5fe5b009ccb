"""Routes served by Channels consumers rather than Django views.

The API's consumers sit behind ApiKeyMiddleware (Django views get the same check from
ApiKeyDjangoMiddleware, on their own thread)."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from django.urls import path, re_path

from accounts.middleware import ApiKeyMiddleware
from accounts.usage import UsageMiddleware
from core.asgi import ASGIApp
from core.cors import CorsAsgiMiddleware
from dashboard.viewer_access import ViewerAccessMiddleware
from dicomweb.app import DicomwebApp
from fhir_rest.app import FhirApp
from fhir_rest.outcome import OperationOutcomeMiddleware
from records.consumers import LiveActivityConsumer, RecordStreamConsumer
from studies.ingest.http_consumer import DicomStreamConsumer
from studies.ingest.websocket_consumer import DicomWebSocketConsumer
from studies.read_app import STUDY_READ_PATH, StudyReadApp, StudyReads

http_routes: list[Any] = [
    path("api/v2/dicom/stream", ApiKeyMiddleware(UsageMiddleware(DicomStreamConsumer()))),  # type: ignore[arg-type]  # an ASGI app
    path("api/v2/records/stream", ApiKeyMiddleware(UsageMiddleware(RecordStreamConsumer.as_asgi()))),  # type: ignore[arg-type]
    # DICOMweb (PS3.18): CORS first, so a browser's preflight needs no key; the dashboard's
    # viewer reads with its session's cookie instead of a key (dashboard/viewer_access.py).
    re_path(
        r"^api/v2/dicomweb/",
        CorsAsgiMiddleware(ApiKeyMiddleware(UsageMiddleware(ViewerAccessMiddleware(DicomwebApp())))),  # type: ignore[arg-type]
    ),
    # FHIR R4 REST (issue 13): every refusal as an OperationOutcome, then CORS, then the key check.
    re_path(
        r"^api/v2/fhir/",
        OperationOutcomeMiddleware(CorsAsgiMiddleware(ApiKeyMiddleware(UsageMiddleware(FhirApp())))),  # type: ignore[arg-type]
    ),
    # The dashboard's live view: a staff session (cookies) instead of an API key.
    path("dashboard/live/stream", AuthMiddlewareStack(LiveActivityConsumer.as_asgi())),
]


def study_read_route(django: ASGIApp) -> Any:
    """A study's metadata and series on raw ASGI (studies/read_app.py), behind CORS (as Django's
    CorsMiddleware comes first there) and the key check; the route's other requests to ``django``."""
    reads = CorsAsgiMiddleware(ApiKeyMiddleware(UsageMiddleware(StudyReadApp())))
    return re_path(STUDY_READ_PATH, StudyReads(reads, django))  # type: ignore[arg-type]  # an ASGI app


websocket_routes: list[Any] = [
    path("ws/v2/dicom/stream", ApiKeyMiddleware(DicomWebSocketConsumer())),  # type: ignore[arg-type]  # an ASGI app
]
