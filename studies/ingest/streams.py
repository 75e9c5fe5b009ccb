"""Writes to chunked, resumable streams (API.md §1): open, store a chunk, claim the assembly, abort.

A chunk becomes durable (its object fsync'd and renamed, its row committed) before the client
hears 2xx. The transaction that stores a stream's last missing chunk claims the reassembly by
linking a new `receiving` Upload to the stream while it holds the stream's row lock, and queues
the task that assembles it (studies/ingest/assembly.py), so exactly one assembly runs, however
many processes race.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from accounts.models import APIKey, Organization
from core.errors import ApiError, conflict, too_large
from outbox.dispatch import outbox_add
from studies.ingest.assembly import stream_finish
from studies.ingest.content_type import ContentType
from studies.ingest.object_keys import chunk_key
from studies.ingest.tasks import assemble_stream
from studies.ingest.uploads import upload_id_free
from studies.models import Chunk, Stream, StreamState, Upload
from studies.objects.storage import ObjectWriter


@dataclass(frozen=True, slots=True)
class StreamSlot:
    """What a chunk request needs to know before reading its body."""

    pk: int
    created: bool  # this request made the stream row (removed again if the chunk is refused)
    held_bytes: int  # bytes of the chunks already stored
    held_sha256: str | None  # the stored chunk with this seq, if any: a retry
    replaceable: bool = False  # the stream's payload was refused at assembly: held seqs take new bytes


@dataclass(frozen=True, slots=True)
class ChunkStored:
    stream_state: str
    assemble_as: str | None  # an upload id: this request completed the stream and assembles it
    upload_id: str | None  # the stream's upload once assembled (or being assembled)


def stream_open(*, organization: Organization, stream_id: str, seq: int, content_type: ContentType) -> StreamSlot:
    """Find or create the stream a chunk names. Raises ApiError 409 for a content type other
    than the first chunk's, or a stream that is over (unless this is a retry of a stored chunk)."""
    if not Stream.objects.filter(organization=organization, stream_id=stream_id).exists():
        _open_streams_check(organization.pk)
    stream, created = Stream.objects.get_or_create(
        organization=organization, stream_id=stream_id, defaults={"content_type": content_type.value}
    )
    if stream.content_type != content_type.value:
        raise conflict(f"This stream's chunks are {stream.content_type}; a chunk cannot change that.")
    held = Chunk.objects.filter(stream=stream, seq=seq).values_list("sha256", flat=True).first()
    if stream.state != StreamState.OPEN and held is None:
        raise conflict(f"The stream is {stream.state}: it takes no new chunks.")
    return StreamSlot(
        pk=stream.pk,
        created=created,
        held_bytes=_held_bytes(stream),
        held_sha256=held,
        replaceable=held is not None and _assembly_failed(stream),
    )


def _open_streams_check(organization_id: int) -> None:
    """At most STREAMS_MAX_OPEN_PER_ORG open streams per organization (a new one beyond is a
    429 until one completes, is aborted or expires): each may hold chunks for a day."""
    cap = settings.STREAMS_MAX_OPEN_PER_ORG
    if Stream.objects.filter(organization_id=organization_id, state=StreamState.OPEN).count() >= cap:
        raise ApiError(
            429,
            f"The organization has {cap} open streams, the most it may: complete or abort one first.",
            slug="too-many-open-streams",
            headers=[("Retry-After", "60")],
        )


def _org_held_check(organization_id: int, adding: int) -> None:
    """At most STREAMS_MAX_HELD_BYTES_PER_ORG bytes held in the organization's open streams."""
    cap = settings.STREAMS_MAX_HELD_BYTES_PER_ORG
    held = Chunk.objects.filter(stream__organization_id=organization_id, stream__state=StreamState.OPEN)
    total = int(held.aggregate(total=Sum("size"))["total"] or 0)
    if total + adding > cap:
        raise ApiError(
            429,
            f"The organization's open streams hold {total} bytes; at most {cap} may be held at once.",
            slug="open-streams-full",
            headers=[("Retry-After", "60")],
        )


def _held_bytes(stream: Stream) -> int:
    return int(Chunk.objects.filter(stream=stream).aggregate(total=Sum("size"))["total"] or 0)


def stream_forget(*, stream_pk: int) -> None:
    """Remove a stream this request created when its first chunk is refused (if still empty)."""
    Stream.objects.filter(pk=stream_pk, state=StreamState.OPEN, chunks__isnull=True).delete()


@dataclass(frozen=True, slots=True)
class ReceivedChunk:
    """A chunk's body as this request received it: written (``writer``), or only hashed
    (``writer`` None) when the stream already holds a chunk with this seq."""

    seq: int
    last: bool
    size: int
    sha256: str
    writer: ObjectWriter | None


def chunk_store(
    *, stream_pk: int, chunk: ReceivedChunk, api_key: APIKey | None, request_id: str, max_total: int | None
) -> ChunkStored:
    """Commit a received chunk. Same seq with the same bytes is a no-op; other bytes, a seq past
    the last one, or a second last chunk are ApiError 409, a chunk taking the stream past
    ``max_total`` bytes ApiError 413, and the bytes are dropped."""
    try:
        with transaction.atomic():
            stream = Stream.objects.select_for_update().filter(pk=stream_pk).first()
            if stream is None:
                raise conflict("The stream was removed while this chunk arrived; send it again.")
            _check_and_commit(stream, chunk, max_total)
            stream.updated = timezone.now()
            stream.save(update_fields=["last_seq", "updated"])
            assemble_as = _claim(stream, api_key, request_id)
    finally:
        if chunk.writer is not None:
            chunk.writer.abort()  # a no-op once committed; drops the bytes of a refused chunk
    upload_id = assemble_as or (str(stream.upload_id) if stream.upload_id else None)
    return ChunkStored(stream_state=stream.state, assemble_as=assemble_as, upload_id=upload_id)


def _check_and_commit(stream: Stream, chunk: ReceivedChunk, max_total: int | None) -> None:
    seq, last = chunk.seq, chunk.last
    held = Chunk.objects.filter(stream=stream, seq=seq).first()
    if held is not None and held.sha256 != chunk.sha256:
        if not _assembly_failed(stream) or chunk.writer is None:
            raise conflict(f"Chunk {seq} is already stored with other bytes.")
        _replace(stream, held, chunk, max_total)  # the correction of a payload that failed to assemble
        return
    if held is None and stream.state != StreamState.OPEN:
        raise conflict(f"The stream is {stream.state}: it takes no new chunks.")
    if stream.last_seq is not None and (seq > stream.last_seq or (last and seq != stream.last_seq)):
        raise conflict(f"Chunk {stream.last_seq} was marked the last one.")
    if last and Chunk.objects.filter(stream=stream, seq__gt=seq).exists():
        raise conflict("A chunk after this one is already stored: it cannot be the last.")
    if held is None:
        _commit_new(stream, chunk, max_total)
    if last:
        stream.last_seq = seq


def _assembly_failed(stream: Stream) -> bool:
    """Open, with every chunk 0..last held, and no upload: its assembly was refused (the
    claim links an upload in the same transaction that stores the last chunk)."""
    return (
        stream.state == StreamState.OPEN
        and stream.upload_id is None
        and stream.last_seq is not None
        and Chunk.objects.filter(stream=stream).count() == stream.last_seq + 1
    )


def _replace(stream: Stream, held: Chunk, chunk: ReceivedChunk, max_total: int | None) -> None:
    """Store other bytes for a held chunk of a stream whose payload was refused at assembly
    (docs/ingest.md): the object is renamed over the old one, its row updated."""
    writer = chunk.writer
    assert writer is not None
    total = _held_bytes(stream) - held.size
    if max_total is not None and total + writer.size > max_total:
        raise too_large(max(0, max_total - total))
    writer.commit()  # staged: the rename replaces the old object atomically
    Chunk.objects.filter(pk=held.pk).update(size=writer.size, sha256=chunk.sha256)


def _commit_new(stream: Stream, chunk: ReceivedChunk, max_total: int | None) -> None:
    """Make a chunk the stream did not hold durable, and its row."""
    writer = chunk.writer
    assert writer is not None  # the body was stored, not just hashed, when nothing was held
    if max_total is not None:
        # Checked again here, under the stream's lock: chunks sent in parallel each fit what
        # was held when they began, but not necessarily together.
        total = _held_bytes(stream)
        if total + writer.size > max_total:
            raise too_large(max(0, max_total - total))
    _org_held_check(stream.organization_id, writer.size)
    writer.commit()
    key = chunk_key(stream.organization_id, stream.pk, chunk.seq)
    Chunk.objects.create(stream=stream, seq=chunk.seq, size=writer.size, sha256=chunk.sha256, object_key=key)


def _claim(stream: Stream, api_key: APIKey | None, request_id: str) -> str | None:
    """Link a new upload and queue its assembly if every chunk 0..last is now held and nobody
    assembles yet."""
    if stream.state != StreamState.OPEN or stream.upload_id is not None or stream.last_seq is None:
        return None
    if Chunk.objects.filter(stream=stream).count() != stream.last_seq + 1:
        return None
    upload = Upload.objects.create(
        id=upload_id_free(request_id),
        organization_id=stream.organization_id,
        api_key=api_key,
        content_type=stream.content_type,
    )
    stream.upload = upload
    stream.assembly_problem = None
    stream.save(update_fields=["upload", "assembly_problem"])
    outbox_add(assemble_stream, stream.pk, str(upload.id))  # sent once this transaction commits
    return str(upload.id)


def stream_abort(*, stream: Stream) -> None:
    """DELETE: stop an open stream and free its chunks; aborting twice is fine."""
    with transaction.atomic():
        locked = Stream.objects.select_for_update().get(pk=stream.pk)
        if locked.state == StreamState.COMPLETE or locked.upload_id is not None:
            raise conflict("The stream is complete (or being assembled): there is nothing to abort.")
        if locked.state == StreamState.OPEN:
            stream_finish(locked, StreamState.ABORTED)
