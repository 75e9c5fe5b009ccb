"""``GET /metrics``: Prometheus's text format, for the operator's monitoring.

Off unless ``PRIZMED_METRICS_TOKEN`` is set (404), and then only with that token as a Bearer
credential (401 otherwise): the counts say how busy each route and organization-free queue is,
which is not for the public. What every process counts is in core/metrics.py; the indexing
queue is read from the database at scrape time, so it is right whichever process indexes.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from datetime import datetime

from django.conf import settings
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from studies.models import Upload, UploadState

_WAITING = (UploadState.QUEUED, UploadState.INDEXING)


class IndexingQueueCollector(Collector):
    """Uploads waiting to be indexed, and how long the oldest has waited (seconds)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = Upload.objects.filter(state__in=_WAITING).aggregate(n=Count("id"), oldest=Min("updated"))
        oldest: datetime | None = waiting["oldest"]
        yield GaugeMetricFamily("prizmed_indexing_queue_uploads", "Uploads queued or being indexed.", waiting["n"])
        lag = (timezone.now() - oldest).total_seconds() if oldest is not None else 0.0
        yield GaugeMetricFamily("prizmed_indexing_lag_seconds", "How long the oldest waiting upload has waited.", lag)


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # every process's files, summed
    else:
        registry = CollectorRegistry()
        registry.register(_ThisProcess())
    registry.register(IndexingQueueCollector())
    return registry


class _ThisProcess(Collector):
    """The default registry's metrics (this process's), added to a scrape's own registry."""

    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


def metrics(request: HttpRequest) -> HttpResponse:
    """The scrape. 404 when metrics are off, 401 without the configured Bearer token."""
    token: str = settings.PRIZMED_METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off: set PRIZMED_METRICS_TOKEN.")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return HttpResponse(status=401, headers={"WWW-Authenticate": "Bearer"})
    body = generate_latest(_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
