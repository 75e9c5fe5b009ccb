"""Liveness and readiness probes, outside authentication."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

from studies.objects.store import storage

log = logging.getLogger("prizmed.health")


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except Exception:  # any failure means not ready; details go to the log, not to callers
        log.warning("readiness: database unavailable", exc_info=True)
        checks["database"] = "error"
    if settings.REDIS_URL:
        try:
            cache.set("prizmed:readyz", "1", timeout=5)
            checks["redis"] = "ok"
        except Exception:
            log.warning("readiness: Redis unavailable", exc_info=True)
            checks["redis"] = "error"
    try:
        storage().check()  # the object store every node shares (S3) or its own disk
        checks["storage"] = "ok"
    except Exception:
        log.warning("readiness: object store unavailable", exc_info=True)
        checks["storage"] = "error"
    ready = all(value == "ok" for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503)
