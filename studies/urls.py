from __future__ import annotations

from typing import Any

from django.urls import path

from core.method_route import route_by_method
from studies.ingest.views import StreamApi, UploadApi
from studies.views import StudyApi, StudyDeleteApi, StudyListApi, StudySeriesApi

urlpatterns: list[Any] = [
    path("studies", StudyListApi.as_view(), name="studies"),
    path("studies/<str:study_uid>", route_by_method(GET=StudyApi, DELETE=StudyDeleteApi), name="study"),
    path("studies/<str:study_uid>/series", StudySeriesApi.as_view(), name="study-series"),
    path("dicom/uploads/<uuid:request_id>", UploadApi.as_view(), name="dicom-upload"),
    path("dicom/streams/<str:stream_id>", StreamApi.as_view(), name="dicom-stream"),
]
