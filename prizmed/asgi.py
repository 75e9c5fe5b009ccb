"""ASGI entry point, served by uvicorn.

Streaming routes (DICOM upload, SSE) are Channels consumers on raw ASGI messages, because
Django's handler reads a whole request body before a view runs; everything else is Django.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "prizmed.settings")
django_app = get_asgi_application()

# Imported after Django is set up: these modules import models.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from accounts.middleware import ApiKeyMiddleware  # noqa: E402
from prizmed.gateway import RequestIdMiddleware  # noqa: E402
from prizmed.routing import http_routes, websocket_routes  # noqa: E402
from prizmed.tasks import start_embedded_beat  # noqa: E402

start_embedded_beat()

django_route = re_path(r"", django_app)  # type: ignore[arg-type]  # an ASGI app, which URLRouter accepts
application = RequestIdMiddleware(
    ProtocolTypeRouter(
        {
            "http": ApiKeyMiddleware(URLRouter([*http_routes, django_route])),
            "websocket": ApiKeyMiddleware(URLRouter(websocket_routes)),
        }
    )
)
