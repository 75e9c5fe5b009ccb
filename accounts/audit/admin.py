"""The audit log in the dashboard: browse and filter, never add, change or delete — for
superusers too (has_*_permission answers False whatever the user's flags)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from accounts.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin[AuditEntry]):
    list_display = (
        "id", "created", "organization_slug", "action", "outcome", "status_code", "key_prefix", "study_uid",
        "patient_id", "instance_count", "bytes",
    )  # fmt: skip
    list_filter = ("organization_slug", "action", "outcome", "created")
    search_fields = ("study_uid", "patient_id", "request_id", "key_prefix")
    date_hierarchy = "created"
    actions = None  # not even the built-in "delete selected"

    def get_readonly_fields(self, request: HttpRequest, obj: AuditEntry | None = None) -> Any:
        return [field.name for field in AuditEntry._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False
