"""Studies and uploads in the dashboard: read-only (they change only through the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

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


def _thumbnail(url: str, size: int) -> SafeString:
    # Lazy: a long list fetches only the thumbnails on screen (dashboard/thumbnails.py caches them).
    return format_html(
        '<img src="{}" alt="" loading="lazy" width="{}" height="{}" style="object-fit:contain;background:#000">',
        url,
        size,
        size,
    )


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    list_display = (
        "image", "study_uid", "organization", "study_date", "accession_number", "series_count", "instance_count"
    )  # fmt: skip
    list_filter = ("organization", "study_date")
    search_fields = ("study_uid", "accession_number", "patient__patient_id")
    list_select_related = ("organization",)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return ["viewer", "series_overview", *super().get_readonly_fields(request, obj)]

    @admin.display(description="")
    def image(self, study: Study) -> SafeString:
        return _thumbnail(reverse("study-thumbnail", args=[study.pk]), 64)

    @admin.display(description="Viewer")
    def viewer(self, study: Study) -> SafeString:
        return format_html('<a class="button" href="{}">Open in viewer</a>', reverse("viewer-open", args=[study.pk]))

    @admin.display(description="Series")
    def series_overview(self, study: Study) -> SafeString:
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    _thumbnail(reverse("series-thumbnail", args=[s.pk]), 128),
                    s.number,
                    s.modality,
                    s.description,
                    s.instance_count,
                )
                for s in study.series.order_by("number", "id")
            ),
        )
        return format_html(
            '<table class="series-overview"><thead><tr><th></th><th>Number</th><th>Modality</th><th>Description</th>'
            "<th>Instances</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )


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
