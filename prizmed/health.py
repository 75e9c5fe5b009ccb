"""Liveness and readiness probes, outside authentication."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, JsonResponse

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
    if settings.CELERY_BROKER_URL and settings.CELERY_BROKER_URL != settings.REDIS_URL:
        checks["broker"] = _broker_check()
    down = sorted(name for name, value in checks.items() if value != "ok")
    if not down:
        return JsonResponse({"status": "ok", "checks": checks})
    # Which backend is down, so an operator (or orchestrator) sees it without reading logs.
    return JsonResponse(
        {"status": "unavailable", "checks": checks, "down": down},
        status=503,
        headers={"Retry-After": str(settings.BACKEND_RETRY_AFTER_SECONDS)},
    )


def _broker_check() -> str:
    from prizmed.celery import app

    try:
        with app.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, timeout=settings.REDIS_CONNECT_TIMEOUT_SECONDS)
        return "ok"
    except Exception:
        log.warning("readiness: broker unavailable", exc_info=True)
        return "error"
