"""Upload status and chunked-stream status/abort (API.md §1): thin DRF views over
studies/selectors.py and studies/streams.py. Uploading itself is studies/consumers.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.conf import settings
from django.http.response import HttpResponseBase
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import request_key
from core.problems import problem_response
from studies.ingest.refusals import Refused
from studies.ingest.selectors import stream_get, upload_get
from studies.ingest.streams import stream_abort
from studies.ingest.uploads import upload_href
from studies.models import Chunk, ItemState, Stream, Upload


class RejectionOutput(serializers.Serializer[Any]):
    position = serializers.IntegerField()
    sop_instance_uid = serializers.CharField()
    reason_code = serializers.CharField()
    reason = serializers.CharField()


class UploadOutput(serializers.Serializer[Upload]):
    request_id = serializers.UUIDField(source="id")
    state = serializers.CharField()
    content_type = serializers.CharField()
    bytes_received = serializers.IntegerField()
    sha256 = serializers.CharField()
    instances_accepted = serializers.IntegerField(source="instances_received")
    instances_indexed = serializers.IntegerField()
    instances_rejected = serializers.IntegerField()
    rejections = serializers.SerializerMethodField()
    study_uids = serializers.ListField(child=serializers.CharField())
    error = serializers.CharField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()

    @extend_schema_field(RejectionOutput(many=True))
    def get_rejections(self, upload: Upload) -> list[dict[str, Any]]:
        rows = upload.items.filter(state=ItemState.REJECTED).order_by("position")
        return [dict(row) for row in rows.values("position", "sop_instance_uid", "reason_code", "reason")]


class UploadApi(APIView):
    @extend_schema(operation_id="upload_status", responses=UploadOutput, summary="An upload's progress")
    def get(self, request: Request, request_id: UUID) -> Response:
        upload = upload_get(organization=request_key(request).organization, upload_id=str(request_id))
        return Response(UploadOutput(upload).data)


class ChunkOutput(serializers.Serializer[Chunk]):
    seq = serializers.IntegerField()
    bytes = serializers.IntegerField(source="size")
    sha256 = serializers.CharField()


class StreamOutput(serializers.Serializer[Stream]):
    stream_id = serializers.CharField()
    state = serializers.CharField()
    content_type = serializers.CharField()
    last_seq = serializers.IntegerField(allow_null=True)
    chunks = serializers.SerializerMethodField()
    missing = serializers.SerializerMethodField()
    bytes_received = serializers.SerializerMethodField()
    upload = serializers.SerializerMethodField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    expires = serializers.SerializerMethodField()

    def _chunks(self, stream: Stream) -> list[Chunk]:
        cached: list[Chunk] | None = getattr(stream, "_chunk_rows", None)
        if cached is None:
            cached = list(stream.chunks.order_by("seq"))
            stream._chunk_rows = cached  # type: ignore[attr-defined]
        return cached

    @extend_schema_field(ChunkOutput(many=True))
    def get_chunks(self, stream: Stream) -> list[dict[str, Any]]:
        return [{"seq": c.seq, "bytes": c.size, "sha256": c.sha256} for c in self._chunks(stream)]

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_missing(self, stream: Stream) -> list[int]:
        """Sequence numbers below the highest known one (the last, once marked) not held."""
        held = {c.seq for c in self._chunks(stream)}
        top = stream.last_seq if stream.last_seq is not None else max(held, default=-1)
        return [seq for seq in range(top + 1) if seq not in held]

    @extend_schema_field(serializers.IntegerField())
    def get_bytes_received(self, stream: Stream) -> int:
        return sum(c.size for c in self._chunks(stream))

    @extend_schema_field(serializers.DictField(allow_null=True))
    def get_upload(self, stream: Stream) -> dict[str, Any] | None:
        if stream.upload_id is None:
            return None
        return {"request_id": str(stream.upload_id), "links": {"status": {"href": upload_href(stream.upload_id)}}}

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_expires(self, stream: Stream) -> str | None:
        if stream.state != "open":
            return None
        return (stream.updated + timedelta(seconds=settings.PRIZMED_STREAM_TTL)).isoformat()


class StreamApi(APIView):
    @extend_schema(operation_id="stream_status", responses=StreamOutput, summary="Chunks held, to resume")
    def get(self, request: Request, stream_id: str) -> Response:
        stream = stream_get(organization=request_key(request).organization, stream_id=stream_id)
        return Response(StreamOutput(stream).data)

    @extend_schema(
        operation_id="stream_abort",
        responses={204: None, 409: OpenApiResponse(description="The stream is complete or being assembled.")},
        summary="Abort a stream and free its chunks",
    )
    def delete(self, request: Request, stream_id: str) -> HttpResponseBase:
        stream = stream_get(organization=request_key(request).organization, stream_id=stream_id)
        try:
            stream_abort(stream=stream)
        except Refused as exc:
            return problem_response(exc.status, exc.detail, slug=exc.slug)
        return Response(status=204)
