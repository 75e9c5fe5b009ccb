"""Routes served by Channels consumers rather than Django views."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from django.urls import path

from records.consumers import LiveActivityConsumer, RecordStreamConsumer
from studies.consumers import DicomStreamConsumer
from studies.ws import DicomWebSocketConsumer

http_routes: list[Any] = [
    path("api/v2/dicom/stream", DicomStreamConsumer()),  # type: ignore[arg-type]  # an ASGI app
    path("api/v2/records/stream", RecordStreamConsumer.as_asgi()),
    # The dashboard's live view: a staff session (cookies) instead of an API key.
    path("dashboard/live/stream", AuthMiddlewareStack(LiveActivityConsumer.as_asgi())),
]
websocket_routes: list[Any] = [
    path("ws/v2/dicom/stream", DicomWebSocketConsumer()),  # type: ignore[arg-type]  # an ASGI app
]
