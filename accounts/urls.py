from __future__ import annotations

from django.urls import path

from accounts.audit.views import AuditEventListApi
from accounts.views import OrganizationApi

urlpatterns = [
    path("organization", OrganizationApi.as_view(), name="organization"),
    path("audit-events", AuditEventListApi.as_view(), name="audit-events"),
]
