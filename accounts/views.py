from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_key
from core.params import known_only


class PlanOutput(serializers.Serializer[object]):
    name = serializers.CharField()
    requests_per_minute = serializers.IntegerField(allow_null=True)
    bandwidth_bps = serializers.IntegerField(allow_null=True)
    max_study_bytes = serializers.IntegerField(allow_null=True)


class KeyOutput(serializers.Serializer[object]):
    prefix = serializers.CharField()
    name = serializers.CharField()
    role = serializers.CharField()
    expires_at = serializers.DateTimeField(allow_null=True)


class OrganizationOutput(serializers.Serializer[object]):
    slug = serializers.CharField()
    name = serializers.CharField()
    plan = PlanOutput()
    key = KeyOutput()


class OrganizationApi(APIView):
    """The calling key's organization, plan limits and the key itself: a cheap way to check a key."""

    @extend_schema(responses=OrganizationOutput, operation_id="organization_read")
    def get(self, request: Request) -> Response:
        known_only(request.query_params, allowed=())
        key = request_key(request)
        org = key.organization
        return Response(OrganizationOutput({"slug": org.slug, "name": org.name, "plan": org.plan, "key": key}).data)
