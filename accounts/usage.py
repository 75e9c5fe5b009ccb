"""What each organization uses, minute by minute, for the dashboard's usage plots: requests and
their statuses (a refusal's status is its reason: 429 rate limited, 413 too large, ...), body
bytes received and sent.

The hot path only adds to a dictionary in this process (``usage_count``: a lock and three
integer additions, ~1 µs); a daemon thread writes the sums to ``UsageMinute`` rows every
``USAGE_FLUSH_SECONDS``, adding to what other processes wrote (one UPDATE per organization,
minute and status). A process that dies loses at most its last interval of counts: these are
usage statistics, not billing records, and nothing is refused on their account (limits are
enforced by accounts/ratelimit.py and the pacer, exactly). Rows older than
``USAGE_KEEP_DAYS`` are pruned by the periodic sweep.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from accounts.models import UsageMinute
from core.asgi import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("prizmed.usage")

_Key = tuple[int, int, int]  # organization id, minute (epoch seconds // 60), status
_lock = threading.Lock()
_pending: defaultdict[_Key, list[int]] = defaultdict(lambda: [0, 0, 0])  # requests, bytes in, bytes out
_flusher: threading.Thread | None = None


def usage_count(organization_id: int, *, status: int, bytes_in: int = 0, bytes_out: int = 0) -> None:
    """Count one answered request of the organization (any status), with its body bytes."""
    key = (organization_id, int(time.time()) // 60, status)
    with _lock:
        sums = _pending[key]
        sums[0] += 1
        sums[1] += bytes_in
        sums[2] += bytes_out
    if _flusher is None:
        _flusher_start()


def usage_flush() -> int:
    """Write this process's pending counts now; returns how many rows they touched."""
    global _pending  # swapped under the lock: no count is lost or written twice
    with _lock:
        pending, _pending = _pending, defaultdict(lambda: [0, 0, 0])
    for key, sums in pending.items():
        _add(key, sums)
    return len(pending)


def usage_per_minute(*, organization_id: int, since: datetime) -> dict[datetime, tuple[int, int, int]]:
    """(requests, bytes in, bytes out) of each minute since ``since`` that had any, all statuses."""
    rows = (
        UsageMinute.objects.filter(organization_id=organization_id, minute__gte=since)
        .values("minute")
        .annotate(requests=Sum("requests"), bytes_in=Sum("bytes_in"), bytes_out=Sum("bytes_out"))
    )
    return {r["minute"]: (r["requests"], r["bytes_in"], r["bytes_out"]) for r in rows}


def usage_by_status(*, organization_id: int, since: datetime) -> dict[int, int]:
    """Requests answered with each status since ``since``."""
    rows = (
        UsageMinute.objects.filter(organization_id=organization_id, minute__gte=since)
        .values("status")
        .annotate(requests=Sum("requests"))
    )
    return {r["status"]: r["requests"] for r in rows.order_by("status")}


def usage_prune() -> int:
    """Delete rows older than ``USAGE_KEEP_DAYS``; how many went."""
    before = timezone.now() - timedelta(days=settings.USAGE_KEEP_DAYS)
    deleted, _ = UsageMinute.objects.filter(minute__lt=before).delete()
    return deleted


def _add(key: _Key, sums: list[int]) -> None:
    organization_id, minute_number, status = key
    requests, bytes_in, bytes_out = sums
    minute = datetime.fromtimestamp(minute_number * 60, tz=UTC)
    row = UsageMinute.objects.filter(organization_id=organization_id, minute=minute, status=status)
    added = {"requests": F("requests") + requests, "bytes_in": F("bytes_in") + bytes_in}
    if row.update(**added, bytes_out=F("bytes_out") + bytes_out):
        return
    try:
        with transaction.atomic():
            UsageMinute.objects.create(
                organization_id=organization_id, minute=minute, status=status,
                requests=requests, bytes_in=bytes_in, bytes_out=bytes_out,
            )  # fmt: skip
    except IntegrityError:  # another process created it meanwhile: add to theirs
        row.update(**added, bytes_out=F("bytes_out") + bytes_out)


def _flusher_start() -> None:
    global _flusher  # one thread per process, started on first use
    with _lock:
        if _flusher is not None:
            return
        _flusher = threading.Thread(target=_flush_forever, name="usage-flush", daemon=True)
    _flusher.start()


def _flush_forever() -> None:
    while True:
        time.sleep(settings.USAGE_FLUSH_SECONDS)
        try:
            usage_flush()
        except Exception:  # the database may be down: these counts are lost, the service is not
            log.exception("usage counts could not be written")
        finally:
            connection.close()


class UsageMiddleware:
    """Inside ApiKeyMiddleware (prizmed/routing.py): count each keyed HTTP request of a consumer
    with its status and body bytes (uploads in, retrievals out)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = scope.get("api_key")
        if key is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, bytes_in, bytes_out = [500], [0], [0]

        async def counted_receive() -> Message:
            message = await receive()
            bytes_in[0] += len(message.get("body", b""))
            return message

        async def counted_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            elif message["type"] == "http.response.body":
                bytes_out[0] += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counted_receive, counted_send)
        finally:
            usage_count(key.organization_id, status=status[0], bytes_in=bytes_in[0], bytes_out=bytes_out[0])
