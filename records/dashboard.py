"""Dashboard page "Live activity": an organization's record events as they happen.

The page opens an EventSource on /dashboard/live/stream (records.consumers.LiveActivityConsumer),
which the browser authorises with this same staff session cookie: no API key reaches the page.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from accounts.models import Organization
from records.selectors import log_head

PERMISSION = "records.view_recordevent"


@staff_member_required
@permission_required(PERMISSION, raise_exception=True)
def live_activity(request: HttpRequest) -> HttpResponse:
    organizations = list(Organization.objects.order_by("name").values("slug", "name"))
    chosen = request.GET.get("organization") or (organizations[0]["slug"] if organizations else "")
    organization = Organization.objects.filter(slug=chosen).first()
    context = {
        **admin.site.each_context(request),
        "title": "Live activity",
        "organizations": organizations,
        "chosen": chosen,
        # The page shows what happens from now on: the stream starts after the current head.
        "since": log_head(organization_id=organization.pk) if organization else 0,
    }
    return TemplateResponse(request, "records/live.html", context)
