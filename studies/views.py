"""Study metadata, search, series and permanent delete (API.md §3–§5): thin DRF views over
studies/selectors.py and studies/services.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit.log import Actor, Attempt
from accounts.permissions import request_key
from core.errors import invalid_parameters
from core.fhir import FHIR_JSON
from core.logs import current_request_id
from core.params import known_only, optional_integer
from dicom.uid import UID_SCHEMA, uid_is_acceptable
from studies.models import VALUE_CHARS, Series, Study
from studies.objects.store import storage
from studies.selectors import StudyFilters, series_list, study_get, study_list
from studies.services import invalid_study_uid, study_delete, study_delete_unauthenticated, study_not_found


def _actor(request: Request) -> Actor:
    key = request_key(request)
    return Actor(
        organization=key.organization,
        key=key,
        request_id=current_request_id.get(),
        client_address=request.META.get("REMOTE_ADDR", ""),
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
    )


def _study_or_404(request: Request, study_uid: str) -> Study:
    if not uid_is_acceptable(study_uid):
        raise invalid_study_uid()
    study = study_get(organization=request_key(request).organization, study_uid=study_uid)
    if study is None:
        raise study_not_found()
    return study


def study_links(study_uid: str) -> dict[str, dict[str, str]]:
    base = f"/api/v2/studies/{study_uid}"
    return {
        "self": {"href": base},
        "series": {"href": f"{base}/series"},
        "fhir": {"href": f"/api/v2/records/stream?study={quote(study_uid)}", "type": FHIR_JSON},
        # Bytes are reached through each series' storage location.
        "retrieval": {"href": f"{base}/series"},
    }


class PatientOutput(serializers.Serializer[Any]):
    patient_id = serializers.CharField()
    name = serializers.CharField()
    birth_date = serializers.DateField(allow_null=True)
    sex = serializers.CharField()


class LinkOutput(serializers.Serializer[Any]):
    href = serializers.CharField()


class FhirLinkOutput(LinkOutput):
    type = serializers.CharField(help_text="The media type to ask for (Accept).")


class StudyLinksOutput(serializers.Serializer[Any]):
    self = LinkOutput()
    series = LinkOutput()
    fhir = FhirLinkOutput()
    retrieval = LinkOutput()


class StudyOutput(serializers.Serializer[Study]):
    study_uid = serializers.CharField()
    patient = PatientOutput()
    study_date = serializers.DateField(allow_null=True)
    study_time = serializers.TimeField(allow_null=True)
    timezone_offset = serializers.CharField()  # (0008,0201) "+hh:mm" qualifying date and time; "" unknown
    accession_number = serializers.CharField()
    description = serializers.CharField()
    referring_physician = serializers.CharField()
    modalities = serializers.ListField(child=serializers.CharField())
    series_count = serializers.IntegerField()
    instance_count = serializers.IntegerField()
    bytes = serializers.IntegerField()
    first_received = serializers.DateTimeField()
    last_received = serializers.DateTimeField()
    links = serializers.SerializerMethodField()

    @extend_schema_field(StudyLinksOutput)
    def get_links(self, study: Study) -> dict[str, dict[str, str]]:
        return study_links(study.study_uid)


class StudyPagination(CursorPagination):
    """Newest first, by id: a cursor stays valid however many studies arrive meanwhile."""

    ordering = "-id"
    page_size = 50
    page_size_query_param = "limit"
    max_page_size = 200

    def get_page_size(self, request: Request) -> int:
        # DRF clamps or ignores a bad limit silently; the client learns the bounds instead.
        return optional_integer(
            request.query_params.get("limit"), name="limit", default=self.page_size, low=1, high=self.max_page_size
        )

    def decode_cursor(self, request: Request) -> Any:
        try:
            return super().decode_cursor(request)
        except exceptions.NotFound:
            raise invalid_parameters({"cursor": ["Invalid cursor."]}) from None


class StudySearchInput(serializers.Serializer[Any]):
    # Values are indexed whole, even past their VR's maximum (docs/indexing.md): searchable whole.
    patient_id = serializers.CharField(required=False, max_length=VALUE_CHARS)
    patient_name = serializers.CharField(
        required=False, max_length=VALUE_CHARS, help_text="Prefix of the name, or of any of its component groups."
    )
    modality = serializers.CharField(
        required=False, max_length=VALUE_CHARS, help_text="A modality (CS, PS3.3 C.7.3.1.1.1), any case: `mr` finds MR."
    )
    date_from = serializers.DateField(required=False)
    date_to = serializers.DateField(required=False)
    accession_number = serializers.CharField(required=False, max_length=VALUE_CHARS)

    def validate_modality(self, value: str) -> str:
        # CS values are upper case by definition (PS3.5 §6.2), so the match ignores the case given.
        return value.upper()


# Not serializer fields: StudyPagination reads them itself.
_PAGING_PARAMETERS = [
    OpenApiParameter("cursor", str, description="Opaque position, from a `next` or `previous` link."),
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": StudyPagination.max_page_size},
        description="Studies per page, 1-200 (default 50).",
    ),
]
_STUDY_UID = OpenApiParameter("study_uid", UID_SCHEMA, OpenApiParameter.PATH, description="Study Instance UID.")
_SEARCH_PARAMETERS = frozenset([*StudySearchInput().fields, "cursor", "limit"])


class StudyPageOutput(serializers.Serializer[Any]):
    next = serializers.URLField(allow_null=True, help_text="The next page, or null on the last.")
    previous = serializers.URLField(allow_null=True, help_text="The previous page, or null on the first.")
    results = StudyOutput(many=True)


class StudyDeletedOutput(serializers.Serializer[Any]):
    study_uid = serializers.CharField()
    patient_id = serializers.CharField()
    series_count = serializers.IntegerField()
    instance_count = serializers.IntegerField()
    bytes = serializers.IntegerField()


class SeriesOutput(serializers.Serializer[Series]):
    series_uid = serializers.CharField()
    number = serializers.IntegerField(allow_null=True)
    modality = serializers.CharField()
    description = serializers.CharField()
    body_part = serializers.CharField()
    instance_count = serializers.IntegerField()
    bytes = serializers.IntegerField()
    storage_location = serializers.SerializerMethodField()

    def get_storage_location(self, series: Series) -> str | None:
        prefix = series.storage_prefix.rstrip("/")
        return f"{storage().uri(prefix)}/" if prefix else None


class SeriesPageOutput(serializers.Serializer[Any]):
    study_uid = serializers.CharField()
    series = SeriesOutput(many=True)


_UID_REFUSED = OpenApiResponse(description="The Study Instance UID is not a valid UID (PS3.5 §9.1).")
_NO_STUDY = OpenApiResponse(description="No such study in this organization.")


class StudyListApi(APIView):
    """Search the organization's studies; paged by an opaque, stable cursor."""

    @extend_schema(
        parameters=[StudySearchInput, *_PAGING_PARAMETERS],
        responses={
            200: StudyPageOutput,
            400: OpenApiResponse(description="An unknown, malformed or out-of-bounds parameter (named)."),
        },
        operation_id="studies_list",
    )
    def get(self, request: Request) -> Response:
        known_only(request.query_params, allowed=_SEARCH_PARAMETERS)
        params = StudySearchInput(data=request.query_params)
        params.is_valid(raise_exception=True)
        studies = study_list(
            organization=request_key(request).organization, filters=StudyFilters(**params.validated_data)
        )
        paginator = StudyPagination()
        page = paginator.paginate_queryset(studies, request, view=self)
        return paginator.get_paginated_response(StudyOutput(page or [], many=True).data)  # type: ignore[arg-type]


class StudyApi(APIView):
    """One study's metadata."""

    @extend_schema(
        responses={200: StudyOutput, 400: _UID_REFUSED, 404: _NO_STUDY},
        operation_id="studies_read",
        parameters=[_STUDY_UID],
    )
    def get(self, request: Request, study_uid: str) -> Response:
        """One study's metadata (any key)."""
        return Response(StudyOutput(_study_or_404(request, study_uid)).data)


class StudyDeleteApi(APIView):
    """A study's permanent deletion: admin keys only, every refusal audited (study_delete)."""

    @extend_schema(
        responses={
            200: StudyDeletedOutput,
            400: _UID_REFUSED,
            403: OpenApiResponse(description="The key's role is not admin."),
            404: _NO_STUDY,
        },
        operation_id="studies_delete",
        parameters=[_STUDY_UID],
    )
    def delete(self, request: Request, study_uid: str) -> Response:
        """A study's permanent deletion (admin keys): rows, bytes, its FHIR record; audited.
        Answers 200 with what was removed."""
        deleted = study_delete(actor=_actor(request), study_uid=study_uid)
        return Response(StudyDeletedOutput(deleted).data)

    def handle_exception(self, exc: Exception) -> Response:
        # DRF refuses a missing or invalid key before delete() runs: audit that attempt here.
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            request = self.request
            attempt = Attempt(
                authorization=request.META.get("HTTP_AUTHORIZATION"),
                request_id=current_request_id.get(),
                client_address=request.META.get("REMOTE_ADDR", ""),
                user_agent=request.META.get("HTTP_USER_AGENT", ""),
            )
            study_delete_unauthenticated(attempt=attempt, study_uid=self.kwargs.get("study_uid", ""))
        return super().handle_exception(exc)


class StudySeriesApi(APIView):
    """The series of one study, each with its storage location (a storage URI, never a path)."""

    @extend_schema(
        responses={200: SeriesPageOutput, 400: _UID_REFUSED, 404: _NO_STUDY},
        operation_id="studies_series_list",
        parameters=[_STUDY_UID],
    )
    def get(self, request: Request, study_uid: str) -> Response:
        study = _study_or_404(request, study_uid)
        series: QuerySet[Series] = series_list(study=study)
        rows = SeriesOutput(series, many=True).data  # type: ignore[arg-type]  # many=True takes an iterable
        return Response({"study_uid": study.study_uid, "series": rows})
