"""Studies and uploads in the dashboard: read-only (they change only through the API)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import Model, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from studies.models import ItemState, Patient, Series, Study, Upload, UploadItem


def _listed(values: list[str] | None) -> str:
    """A JSON list of codes or UIDs as people read it: ``MR, CT``, not ``["MR", "CT"]``."""
    return ", ".join(values or []) or "—"


class ReadOnlyAdmin(admin.ModelAdmin[Model]):
    actions = None
    # Fields shown through a display method instead of their raw (JSON) value.
    displayed_as: dict[str, str] = {}

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return [self.displayed_as.get(field.name, field.name) for field in self.model._meta.fields]

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> Any:
        return self.get_readonly_fields(request, obj)

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
        "image", "study_uid", "organization", "study_date", "accession_number", "modality_list", "series_count",
        "instance_count",
    )  # fmt: skip
    list_filter = ("organization", "study_date")
    search_fields = ("study_uid", "accession_number", "patient__patient_id")
    list_select_related = ("organization",)
    displayed_as = {"modalities": "modality_list"}

    @admin.display(description="modalities")
    def modality_list(self, study: Study) -> str:
        return _listed(study.modalities)

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


class RejectionInline(admin.TabularInline[UploadItem, Upload]):
    """An upload's rejected instances, each with its reason (what GET /dicom/uploads/{id} lists)."""

    model = UploadItem
    verbose_name = "rejected instance"
    verbose_name_plural = "rejected instances"
    fields = ("position", "reason_code", "reason", "sop_instance_uid")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[UploadItem]:
        return super().get_queryset(request).filter(state=ItemState.REJECTED).order_by("position")

    def has_add_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Upload | None = None) -> bool:
        return False


@admin.register(Upload)
class UploadAdmin(ReadOnlyAdmin):
    list_display = (
        "created", "organization", "state", "instances_received", "instances_indexed", "instances_rejected", "id",
    )  # fmt: skip
    list_display_links = ("created",)
    list_filter = ("state", "organization", "created")
    date_hierarchy = "created"
    ordering = ("-created",)
    search_fields = ("id",)
    displayed_as = {"study_uids": "study_uid_list"}
    inlines = [RejectionInline]

    @admin.display(description="study UIDs")
    def study_uid_list(self, upload: Upload) -> str:
        return _listed(upload.study_uids)


@admin.register(UploadItem)
class UploadItemAdmin(ReadOnlyAdmin):
    list_display = ("upload", "position", "state", "reason_code", "sop_instance_uid")
    list_filter = ("state", "reason_code")
