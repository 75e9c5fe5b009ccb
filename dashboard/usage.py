"""An organization's usage page: requests per minute and streaming bandwidth over the last hour,
day or 30 days, each against its plan's limit; refusals by status; what it stores and has open
now (accounts/usage.py counts; this page reads)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.admin import site
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.safestring import SafeString

from accounts.models import Organization
from accounts.usage import usage_by_status, usage_flush, usage_per_minute
from dashboard.charts import line_chart
from studies.models import Stream, StreamState, Study

MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Window:
    """How far back a page looks, and how many minutes each plotted point covers."""

    span: timedelta
    bucket_minutes: int
    time_format: str


WINDOWS = {
    "hour": Window(timedelta(hours=1), 1, "%H:%M"),
    "day": Window(timedelta(days=1), 15, "%H:%M"),
    "month": Window(timedelta(days=30), 24 * 60, "%d %b"),
}


def usage_series(*, organization_id: int, window: Window, now: datetime) -> dict[str, list[float]]:
    """Per point (oldest first): the busiest minute's requests, and its upload and download
    bandwidth in bits per second. Each point shows its worst minute, since limits are per minute."""
    end = now.replace(second=0, microsecond=0) + MINUTE
    minutes = int(window.span / MINUTE)
    start = end - minutes * MINUTE
    counts = usage_per_minute(organization_id=organization_id, since=start)
    series: dict[str, list[float]] = {"requests": [], "upload_bps": [], "download_bps": []}
    for first in range(0, minutes, window.bucket_minutes):
        bucket = [counts.get(start + (first + i) * MINUTE, (0, 0, 0)) for i in range(window.bucket_minutes)]
        series["requests"].append(max(r for r, _, _ in bucket))
        series["upload_bps"].append(max(b for _, b, _ in bucket) * 8 / 60)
        series["download_bps"].append(max(b for _, _, b in bucket) * 8 / 60)
    return series


def _bits(value: float) -> str:
    for unit, size in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if value >= size:
            return f"{value / size:.1f} {unit}"
    return f"{value:.0f} bit/s"


def _per_minute(value: float) -> str:
    return f"{value:.0f}/min"


@staff_member_required
def organization_usage(request: HttpRequest, organization_id: int) -> HttpResponse:
    """``?window=hour|day|month`` (default hour). 403 without the permission to view organizations."""
    if not request.user.has_perm("accounts.view_organization"):
        raise PermissionDenied
    organization = get_object_or_404(Organization.objects.select_related("plan"), pk=organization_id)
    name = request.GET.get("window", "hour")
    window = WINDOWS.get(name, WINDOWS["hour"])
    usage_flush()  # this process's latest counts; other processes' reach the database within seconds
    now = timezone.now()
    series = usage_series(organization_id=organization.pk, window=window, now=now)
    start, end = (now - window.span).astimezone(UTC), now.astimezone(UTC)
    axis = {"start": f"{start:{window.time_format}} UTC", "end": f"{end:{window.time_format}} UTC"}
    plan = organization.plan
    charts: list[tuple[str, SafeString]] = [
        (
            "Requests per minute",
            line_chart(series["requests"], limit=plan.requests_per_minute, label=_per_minute, **axis),
        ),
        ("Upload bandwidth", line_chart(series["upload_bps"], limit=plan.bandwidth_bps, label=_bits, **axis)),
        ("Download bandwidth", line_chart(series["download_bps"], limit=plan.bandwidth_bps, label=_bits, **axis)),
    ]
    context = {
        **site.each_context(request),
        "title": f"Usage of {organization.name}",
        "organization": organization,
        "window": name if name in WINDOWS else "hour",
        "windows": list(WINDOWS),
        "charts": charts,
        "statuses": usage_by_status(organization_id=organization.pk, since=now - window.span),
        "stored_bytes": Study.objects.filter(organization=organization).aggregate(n=Sum("bytes"))["n"] or 0,
        "open_streams": Stream.objects.filter(organization=organization, state=StreamState.OPEN).count(),
    }
    return render(request, "dashboard/usage.html", context)
