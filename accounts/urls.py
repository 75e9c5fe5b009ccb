from __future__ import annotations

from django.urls import path

from accounts.views import OrganizationApi

urlpatterns = [path("organization", OrganizationApi.as_view(), name="organization")]
