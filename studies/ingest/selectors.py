"""Reads of ingest (uploads, streams), always scoped to one organization. A `*_get` answers None
for a row that is not the organization's; the caller turns that into its 404."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings

from accounts.models import Organization
from studies.ingest.links import upload_link
from studies.models import ItemState, Stream, StreamState, Upload, UploadState


@dataclass(frozen=True)
class Rejection:
    position: int
    sop_instance_uid: str
    reason_code: str
    reason: str


@dataclass(frozen=True)
class InstanceOutcome:
    """What became of one instance sent (docs/indexing.md, "Every instance accounted for")."""

    position: int
    sop_instance_uid: str  # "" only while pending, or when not even the File Meta names it
    study_instance_uid: str
    series_instance_uid: str
    outcome: str  # pending | indexed | replaced (an earlier copy) | rejected
    reason_code: str  # for rejected
    reason: str
    warnings: list[dict[str, str]]  # [{"code", "message"}]: indexed though non-conformant


@dataclass(frozen=True)
class UploadStatus:
    """An upload's progress (GET /dicom/uploads/{id}): the row, why items were rejected, and
    the outcome of every instance sent, in upload order."""

    upload: Upload
    rejections: list[Rejection]
    instances: list[InstanceOutcome] | None  # once the upload is done or failed, else None


@dataclass(frozen=True)
class ChunkHeld:
    seq: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class SeqRange:
    """Chunk seqs ``first``..``last`` (inclusive)."""

    first: int
    last: int


def missing_ranges(held: list[int], top: int) -> list[SeqRange]:
    """The runs of 0..``top`` not in ``held`` (ascending): as long as the chunks held, however
    large the seqs (a lone chunk 99 999 999 is one range, not 10^8 numbers)."""
    gaps: list[SeqRange] = []
    expected = 0
    for seq in held:
        if seq > top:
            break
        if seq > expected:
            gaps.append(SeqRange(expected, seq - 1))
        expected = seq + 1
    if expected <= top:
        gaps.append(SeqRange(expected, top))
    return gaps


@dataclass(frozen=True)
class StreamStatus:
    """What a client needs to resume a stream (GET /dicom/streams/{id})."""

    stream: Stream
    chunks: list[ChunkHeld]  # in seq order
    missing: list[SeqRange]  # runs of seqs below the highest known one (the last, once marked) not held
    bytes_received: int
    upload: dict[str, Any] | None  # the stream's upload and its status link, once assembling
    expires: datetime | None  # when an open stream expires unless a chunk arrives


def upload_get(*, organization: Organization, upload_id: str) -> Upload | None:
    """The organization's upload with this id (= request id)."""
    return Upload.objects.filter(organization=organization, pk=upload_id).first()


def upload_status(*, organization: Organization, upload_id: str) -> UploadStatus | None:
    upload = upload_get(organization=organization, upload_id=upload_id)
    if upload is None:
        return None
    if upload.state not in (UploadState.DONE, UploadState.FAILED):
        # Clients poll an upload in progress, often: the rejections so far, not the list of
        # every instance sent (thousands) while it mostly says "pending".
        rows = upload.items.filter(state=ItemState.REJECTED).order_by("position")
        so_far = rows.values_list("position", "sop_instance_uid", "reason_code", "reason")
        return UploadStatus(upload=upload, rejections=[Rejection(*row) for row in so_far], instances=None)
    columns = ("position", "sop_instance_uid", "media_storage_sop_instance_uid", "study_instance_uid",
               "series_instance_uid", "state", "replaced", "reason_code", "reason", "warnings")  # fmt: skip
    outcomes = upload.items.order_by("position").values_list(*columns)
    instances = [_outcome(dict(zip(columns, row, strict=True))) for row in outcomes]
    rejections = [
        Rejection(i.position, i.sop_instance_uid, i.reason_code, i.reason) for i in instances if i.outcome == "rejected"
    ]
    return UploadStatus(upload=upload, rejections=rejections, instances=instances)


def _outcome(row: dict[str, Any]) -> InstanceOutcome:
    sop, state = row["sop_instance_uid"], row["state"]
    if state == ItemState.STORED:
        outcome, sop = "pending", sop or row["media_storage_sop_instance_uid"]
    elif state == ItemState.REJECTED:
        outcome = "rejected"
    else:
        outcome = "replaced" if row["replaced"] else "indexed"
    return InstanceOutcome(
        row["position"], sop, row["study_instance_uid"], row["series_instance_uid"], outcome,
        row["reason_code"], row["reason"], row["warnings"],
    )  # fmt: skip


def stream_get(*, organization: Organization, stream_id: str) -> Stream | None:
    """The organization's stream with this X-Stream-Id."""
    return Stream.objects.filter(organization=organization, stream_id=stream_id).first()


def stream_status(*, organization: Organization, stream_id: str) -> StreamStatus | None:
    stream = stream_get(organization=organization, stream_id=stream_id)
    if stream is None:
        return None
    chunks = [ChunkHeld(*row) for row in stream.chunks.order_by("seq").values_list("seq", "size", "sha256")]
    held = [chunk.seq for chunk in chunks]
    top = stream.last_seq if stream.last_seq is not None else max(held, default=-1)
    open_ = stream.state == StreamState.OPEN
    return StreamStatus(
        stream=stream,
        chunks=chunks,
        missing=missing_ranges(held, top),
        bytes_received=sum(chunk.bytes for chunk in chunks),
        upload=upload_link(stream.upload_id) if stream.upload_id is not None else None,
        expires=stream.updated + timedelta(seconds=settings.PRIZMED_STREAM_TTL) if open_ else None,
    )
