"""Prometheus metrics of every process (prometheus-client), scraped at /metrics
(dashboard/metrics.py; docs/dashboard.md lists them with the queries that use them).

HTTP traffic is measured once, around the whole ASGI application (``HttpMetricsMiddleware``),
so Django views and the raw-ASGI consumers (uploads, SSE, DICOMweb) are counted alike and no
route has to remember to. Under several uvicorn workers and Celery processes,
``PROMETHEUS_MULTIPROC_DIR`` makes prometheus-client keep each process's values in files there,
which the scrape sums; without it (the embedded default) they live in this process.
"""

from __future__ import annotations

import re
import time

from prometheus_client import Counter, Gauge, Histogram

from core.asgi import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "prizmed_http_requests", "HTTP requests answered, by route, method and status.", ["route", "method", "status"]
)
HTTP_DURATION = Histogram(
    "prizmed_http_request_duration_seconds",
    "Seconds from a request's arrival to its response's start (streams: to their first byte).",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_IN_FLIGHT = Gauge(
    "prizmed_http_requests_in_flight",
    "Requests being served, by route (on the record stream route: the open SSE clients).",
    ["route"],
    multiprocess_mode="livesum",
)
UPLOAD_BYTES = Counter("prizmed_upload_bytes", "Body bytes of the uploads accepted (202), framing included.")
UPLOAD_INSTANCES = Counter("prizmed_upload_instances", "DICOM instances in the uploads accepted (202).")

# A path segment that names a resource rather than a route: it holds a digit (ids, UIDs, frame
# lists, hashed file names), unless it is an API version such as "v2".
_RESOURCE = re.compile(r"(?<=/)(?!v\d+(?:/|$))[^/]*\d[^/]*")
UNMATCHED = "unmatched"
# Long-lived requests, counted by their own route while open; every other one as "other".
STREAMING_ROUTES = frozenset({"/api/v2/records/stream", "/api/v2/dicom/stream", "/dashboard/live/stream"})


# However paths vary (a scanner's redirects to the login page), a process labels at most this
# many routes; later ones are counted as "other".
MAX_ROUTES = 300
_routes: set[str] = set()


def route_label(path: str, status: int) -> str:
    """The route of ``path`` with its resource names as ``{id}``: ``/api/v2/studies/{id}/series``.
    A 404 is ``unmatched``, so unknown paths never grow the number of series."""
    if status == 404:
        return UNMATCHED
    route = _RESOURCE.sub("{id}", path)
    if route not in _routes:
        if len(_routes) >= MAX_ROUTES:
            return "other"
        _routes.add(route)
    return route


class HttpMetricsMiddleware:
    """Count and time every HTTP request (not WebSockets) around ``app``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        answered = [False]
        in_flight = HTTP_IN_FLIGHT.labels(scope["path"] if scope["path"] in STREAMING_ROUTES else "other")

        async def measured(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered[0] = True
                _answered(scope, message["status"], started)
            await send(message)

        in_flight.inc()
        try:
            await self.app(scope, receive, measured)
        finally:
            in_flight.dec()
            if not answered[0]:  # the app failed before answering: the server answers 500
                _answered(scope, 500, started)


def _answered(scope: Scope, status: int, started: float) -> None:
    # Counted when the answer starts, as the client sees it; a stream goes on being in flight.
    route = route_label(scope["path"], status)
    HTTP_DURATION.labels(route).observe(time.perf_counter() - started)
    HTTP_REQUESTS.labels(route, scope["method"], str(status)).inc()
