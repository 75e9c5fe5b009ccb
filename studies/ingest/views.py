"""Upload status and chunked-stream status/abort (API.md §1): thin DRF views over
studies/ingest/selectors.py and studies/ingest/streams.py. Uploading itself is the consumers'."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_key
from core.errors import not_found
from core.params import known_only
from studies.ingest.selectors import StreamStatus, UploadStatus, stream_get, stream_status, upload_status
from studies.ingest.streams import stream_abort

# The detail DRF gave these 404s when the selectors raised Http404: kept word for word.
NOT_FOUND = "Not found."


class RejectionOutput(serializers.Serializer[Any]):
    position = serializers.IntegerField()
    sop_instance_uid = serializers.CharField()
    reason_code = serializers.CharField()
    reason = serializers.CharField()


class WarningOutput(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()


class InstanceOutcomeOutput(serializers.Serializer[Any]):
    position = serializers.IntegerField()
    sop_instance_uid = serializers.CharField()
    study_instance_uid = serializers.CharField()
    series_instance_uid = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["pending", "indexed", "replaced", "rejected"])
    reason_code = serializers.CharField()
    reason = serializers.CharField()
    warnings = WarningOutput(many=True)


class UploadOutput(serializers.Serializer[UploadStatus]):
    request_id = serializers.UUIDField(source="upload.id")
    state = serializers.CharField(source="upload.state")
    content_type = serializers.CharField(source="upload.content_type")
    bytes_received = serializers.IntegerField(source="upload.bytes_received")
    sha256 = serializers.CharField(source="upload.sha256")
    instances_accepted = serializers.IntegerField(source="upload.instances_received")
    instances_indexed = serializers.IntegerField(source="upload.instances_indexed")
    instances_rejected = serializers.IntegerField(source="upload.instances_rejected")
    rejections = RejectionOutput(many=True)
    # Every instance sent, in order, once the upload is done or failed (null before).
    instances = InstanceOutcomeOutput(many=True, allow_null=True)
    study_uids = serializers.ListField(child=serializers.CharField(), source="upload.study_uids")
    error = serializers.CharField(source="upload.error")
    created = serializers.DateTimeField(source="upload.created")
    updated = serializers.DateTimeField(source="upload.updated")


class UploadApi(APIView):
    @extend_schema(operation_id="upload_status", responses=UploadOutput, summary="An upload's progress")
    def get(self, request: Request, request_id: UUID) -> Response:
        known_only(request.query_params, allowed=())
        status = upload_status(organization=request_key(request).organization, upload_id=str(request_id))
        if status is None:
            raise not_found(NOT_FOUND)
        return Response(UploadOutput(status).data)


class ChunkOutput(serializers.Serializer[Any]):
    seq = serializers.IntegerField()
    bytes = serializers.IntegerField()
    sha256 = serializers.CharField()


class HrefOutput(serializers.Serializer[Any]):
    href = serializers.CharField()


class StatusLinkOutput(serializers.Serializer[Any]):
    status = HrefOutput()


class UploadLinkOutput(serializers.Serializer[Any]):
    request_id = serializers.UUIDField()
    links = StatusLinkOutput()


class SeqRangeOutput(serializers.Serializer[Any]):
    first = serializers.IntegerField()
    last = serializers.IntegerField()


class StreamOutput(serializers.Serializer[StreamStatus]):
    stream_id = serializers.CharField(source="stream.stream_id")
    state = serializers.CharField(source="stream.state")
    content_type = serializers.CharField(source="stream.content_type")
    last_seq = serializers.IntegerField(allow_null=True, source="stream.last_seq")
    chunks = ChunkOutput(many=True)
    missing = SeqRangeOutput(many=True)  # ranges, so the answer is as long as the chunks held
    bytes_received = serializers.IntegerField()
    upload = UploadLinkOutput(allow_null=True, help_text="The upload this stream became, once complete.")
    created = serializers.DateTimeField(source="stream.created")
    updated = serializers.DateTimeField(source="stream.updated")
    expires = serializers.DateTimeField(allow_null=True)


class StreamApi(APIView):
    @extend_schema(operation_id="stream_status", responses=StreamOutput, summary="Chunks held, to resume")
    def get(self, request: Request, stream_id: str) -> Response:
        known_only(request.query_params, allowed=())
        status = stream_status(organization=request_key(request).organization, stream_id=stream_id)
        if status is None:
            raise not_found(NOT_FOUND)
        return Response(StreamOutput(status).data)

    @extend_schema(
        operation_id="stream_abort",
        responses={204: None, 409: OpenApiResponse(description="The stream is complete or being assembled.")},
        summary="Abort a stream and free its chunks",
    )
    def delete(self, request: Request, stream_id: str) -> Response:
        known_only(request.query_params, allowed=())
        stream = stream_get(organization=request_key(request).organization, stream_id=stream_id)
        if stream is None:
            raise not_found(NOT_FOUND)
        stream_abort(stream=stream)
        return Response(status=204)
