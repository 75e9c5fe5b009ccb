"""Studies and uploads in the dashboard: read-only (they change only through the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from studies.models import Patient, Series, Study, Upload, UploadItem


class ReadOnlyAdmin(admin.ModelAdmin[Model]):
    actions = None

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(Patient)
class PatientAdmin(ReadOnlyAdmin):
    list_display = ("patient_id", "name", "organization", "birth_date", "sex")
    list_filter = ("organization",)
    search_fields = ("patient_id", "name")


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = ("study_uid", "organization", "study_date", "accession_number", "series_count", "instance_count")
    list_filter = ("organization", "study_date")
    search_fields = ("study_uid", "accession_number", "patient__patient_id")
    list_select_related = ("organization",)


@admin.register(Series)
class SeriesAdmin(ReadOnlyAdmin):
    list_display = ("series_uid", "study", "number", "modality", "instance_count", "bytes")
    search_fields = ("series_uid", "study__study_uid")
    list_select_related = ("study",)


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = ("id", "organization", "state", "instances_received", "instances_indexed", "instances_rejected")
    list_filter = ("state", "organization")


@admin.register(UploadItem)
class UploadItemAdmin(ReadOnlyAdmin):
    list_display = ("upload", "position", "state", "reason_code", "sop_instance_uid")
    list_filter = ("state", "reason_code")
