from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import problems
from prizmed import health
from prizmed import openapi as _openapi  # noqa: F401  # registers the bearer scheme before any schema is built
from records.dashboard import live_activity

admin.site.site_header = "PrizMed dashboard"
admin.site.site_title = "PrizMed"
admin.site.index_title = "Organizations, keys, studies and audit log"
# "View site": the API's own documentation, not "/", which serves nothing (a bare 404).
admin.site.site_url = "/api/docs/"

handler404 = "core.problems.not_found_handler"
handler500 = "core.problems.server_failure_handler"
handler400 = "core.problems.bad_request_handler"
handler403 = "core.problems.permission_denied_handler"

api_v2 = [
    path("", include("accounts.urls")),
    path("", include("studies.urls")),
    path("", include("records.urls")),
]

urlpatterns = [
    path("healthz", health.healthz),
    path("readyz", health.readyz),
    path("admin/", admin.site.urls),
    path("dashboard/live/", live_activity, name="live-activity"),
    path("", include("dashboard.urls")),
    path("api/schema/", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="swagger-ui",
    ),
    path("api/v2/", include(api_v2)),
    re_path(r"^api/(?P<rest>.*)$", problems.api_not_found),
]
