from __future__ import annotations

from django.urls import path, re_path

from dashboard.metrics import metrics
from dashboard.thumbnails import series_thumbnail, study_thumbnail
from dashboard.usage import organization_usage
from dashboard.viewer import viewer_config, viewer_open, viewer_page

urlpatterns = [
    path("metrics", metrics, name="metrics"),
    path("dashboard/organizations/<int:organization_id>/usage", organization_usage, name="organization-usage"),
    path("dashboard/studies/<int:study_id>/viewer", viewer_open, name="viewer-open"),
    path("dashboard/studies/<int:study_id>/thumbnail", study_thumbnail, name="study-thumbnail"),
    path("dashboard/series/<int:series_id>/thumbnail", series_thumbnail, name="series-thumbnail"),
    path("viewer/app-config.js", viewer_config, name="viewer-config"),
    re_path(r"^viewer/(?P<route>.*)$", viewer_page, name="viewer"),
]
