"""Study metadata, search, series and permanent delete (API.md §3–§5): thin DRF views over
studies/selectors.py and studies/services.py.

GET and HEAD of a study and of its series are served on raw ASGI (studies/read_app.py) with
this module's ``study_read``; their DRF views below describe them (OpenAPI), answer their other
methods (OPTIONS, 405), and answer the requests only Django answers alike (core/view_parity.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit.log import Actor, Attempt
from accounts.models import Organization
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


def study_uid_checked(study_uid: str) -> str:
    """``study_uid``, or ApiError 400 when the one UID rule (dicom/uid.py) refuses it."""
    if not uid_is_acceptable(study_uid):
        raise invalid_study_uid()
    return study_uid


def study_read(*, organization: Organization, study_uid: str, series: bool) -> dict[str, Any]:
    """The body of `GET /studies/{uid}` (``series`` False) or `GET /studies/{uid}/series` (True)
    for a UID already checked (``study_uid_checked``). Raises ApiError 404 when the organization
    has no such study. Two queries at most (the study with its patient, then its series)."""
    study = study_get(organization=organization, study_uid=study_uid)
    if study is None:
        raise study_not_found()
    if series:
        return {"study_uid": study.study_uid, "series": [series_body(s) for s in series_list(study=study)]}
    return study_body(study)


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


def _iso_datetime(value: datetime) -> str:
    """As DRF's DateTimeField writes it (settings.TIME_ZONE is UTC): ISO 8601, `Z` for UTC."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def study_body(study: Study) -> dict[str, Any]:
    """StudyOutput's representation, built directly: the study read is the API's hottest, and
    DRF's serializer (deep-copying its fields on every call) cost more than the rest of the
    request. tests/unit/test_study_body.py holds it equal to the serializer's."""
    patient = study.patient
    return {
        "study_uid": study.study_uid,
        "patient": {
            "patient_id": patient.patient_id,
            "name": patient.name,
            "birth_date": patient.birth_date.isoformat() if patient.birth_date else None,
            "sex": patient.sex,
        },
        "study_date": study.study_date.isoformat() if study.study_date else None,
        "study_time": study.study_time.isoformat() if study.study_time else None,
        "timezone_offset": study.timezone_offset,
        "accession_number": study.accession_number,
        "description": study.description,
        "referring_physician": study.referring_physician,
        "modalities": [str(m) for m in study.modalities],
        "series_count": study.series_count,
        "instance_count": study.instance_count,
        "bytes": study.bytes,
        "first_received": _iso_datetime(study.first_received),
        "last_received": _iso_datetime(study.last_received),
        "links": study_links(study.study_uid),
    }


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
        return series_storage_location(series)


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
        organization = request_key(request).organization
        return Response(study_read(organization=organization, study_uid=study_uid_checked(study_uid), series=False))


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
        organization = request_key(request).organization
        return Response(study_read(organization=organization, study_uid=study_uid_checked(study_uid), series=True))


def series_storage_location(series: Series) -> str | None:
    """Where a series' objects are, as a storage URI (never a path); None before any."""
    prefix = series.storage_prefix.rstrip("/")
    return f"{storage().uri(prefix)}/" if prefix else None


def series_body(series: Series) -> dict[str, Any]:
    """SeriesOutput's representation, built directly (as ``study_body``)."""
    return {
        "series_uid": series.series_uid,
        "number": series.number,
        "modality": series.modality,
        "description": series.description,
        "body_part": series.body_part,
        "instance_count": series.instance_count,
        "bytes": series.bytes,
        "storage_location": series_storage_location(series),
    }
