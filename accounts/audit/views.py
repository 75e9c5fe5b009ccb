"""`GET /audit-events`: the organization's audit log for admin keys, as a FHIR searchset Bundle."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.audit.fhir import audit_event
from accounts.audit.log import audit_entry_list
from accounts.permissions import IsAdminKey, request_key
from core.fhir import FHIR_JSON, searchset
from core.params import known_only


class AuditEventListApi(APIView):
    """Newest first; `_count` per page, and the Bundle's `next` link for the page after."""

    permission_classes = [IsAdminKey]

    class Input(serializers.Serializer[Any]):
        _count = serializers.IntegerField(required=False, min_value=1, max_value=200, default=50)
        _before = serializers.IntegerField(required=False, min_value=1)

    @extend_schema(
        parameters=[Input],
        responses={
            (200, FHIR_JSON): OpenApiResponse(
                response={"type": "object", "description": "FHIR R4 Bundle (searchset) of AuditEvent"},
                description="FHIR R4 Bundle (searchset) of AuditEvent",
            ),
            403: OpenApiResponse(description="The key's role is not admin."),
        },
        operation_id="audit_events_list",
    )
    def get(self, request: Request) -> Response:
        known_only(request.query_params, allowed=("_count", "_before"))
        params = self.Input(data=request.query_params)
        params.is_valid(raise_exception=True)
        count: int = params.validated_data["_count"]
        key = request_key(request)
        entries = list(
            audit_entry_list(organization=key.organization, before=params.validated_data.get("_before"))[: count + 1]
        )
        base = request.build_absolute_uri(request.path)
        links = [{"relation": "self", "url": request.build_absolute_uri()}]
        if len(entries) > count:
            entries = entries[:count]
            links.append({"relation": "next", "url": f"{base}?_count={count}&_before={entries[-1].pk}"})
        bundle = searchset(resources=[audit_event(entry) for entry in entries], links=links)
        return Response(bundle, content_type=FHIR_JSON)
