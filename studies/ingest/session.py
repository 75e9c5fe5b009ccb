"""One upload request, whatever carries it (HTTP body or WebSocket frames): who sends it, its
checked headers, its limits, and how its bytes reach the receive pipeline.

Each piece of the body is paced, counted against the limits and handed to the receiver
(studies/ingest/receiver.py) on a worker thread, so memory stays flat whatever the size. Every
refusal removes what the request wrote; the services own the rows.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from accounts.models import APIKey
from core.asgi import Receive, Scope
from core.errors import ApiError, too_large
from studies.ingest.assembly import assembly_outcome
from studies.ingest.body_pump import body_pieces, pump
from studies.ingest.links import stream_href, upload_href
from studies.ingest.object_keys import chunk_key
from studies.ingest.pacing import pacer
from studies.ingest.payload_parser import DigestSink, NullSink, PayloadParser
from studies.ingest.receiver import Receiver
from studies.ingest.request_headers import MAX_REQUEST_BYTES, MAX_SEQ, ChunkHeaders, UploadHeaders, digest_check
from studies.ingest.selectors import upload_get
from studies.ingest.streams import (
    ChunkStored,
    ReceivedChunk,
    StreamSlot,
    chunk_store,
    stream_forget,
    stream_open,
)
from studies.ingest.uploads import upload_complete, upload_discard, upload_open, upload_touch
from studies.models import StreamState, Upload, UploadState
from studies.objects.store import storage

# The completing chunk looks for its stream's assembly this often: at first soon (a small
# payload takes a worker milliseconds), then less often (a large one takes seconds).
_FIRST_POLL_S = 0.005
_LAST_POLL_S = 0.2


def upload_answer(upload: Upload) -> dict[str, Any]:
    """The 202 body of a received upload, and of a replay of its request id."""
    return {
        "request_id": str(upload.id),
        "state": upload.state,
        "bytes_received": upload.bytes_received,
        "sha256": upload.sha256,
        "instances_accepted": upload.instances_received,
        "links": {"status": {"href": upload_href(upload.id)}},
    }


def max_chunk_seq(max_study_bytes: int | None) -> int:
    """The highest X-Chunk-Seq a stream of this plan may use: its study size in chunks of
    STREAMS_MIN_CHUNK_BYTES (every chunk but the last is meant to be at least that), so the
    seqs, and a stream's status, stay in proportion to what the plan lets it hold."""
    if max_study_bytes is None:
        return MAX_SEQ
    return min(MAX_SEQ, -(-int(max_study_bytes) // settings.STREAMS_MIN_CHUNK_BYTES))


def request_id_reused(upload: Upload) -> ApiError:
    """422 for a request id already used with another payload of this organization."""
    return ApiError(
        422,
        f"X-Request-Id {upload.id} was already used for a different payload (instances stored: sha-256 "
        f"{upload.sha256}). "
        "This payload was not stored: send it with a new X-Request-Id.",
        slug="request-id-reused",
        upload=upload_answer(upload),
    )


class Ingest:
    """One request: who sends it, its checked headers, and how its body is read."""

    def __init__(self, scope: Scope, receive: Receive, headers: UploadHeaders) -> None:
        self.key: APIKey = scope["api_key"]
        self.organization = self.key.organization
        self.plan = self.organization.plan
        self.request_id: str = scope["request_id"]
        self.receive = receive
        self.headers = headers

    def limit(self, held: int = 0) -> int:
        """Most bytes this body may carry: 4 GiB, and what the plan's study size leaves."""
        if self.plan.max_study_bytes is None:
            return MAX_REQUEST_BYTES
        return max(0, min(MAX_REQUEST_BYTES, int(self.plan.max_study_bytes) - held))

    def pieces(self, limit: int) -> Any:
        if self.headers.content_length is not None and self.headers.content_length > limit:
            raise too_large(limit)  # refused before a byte is read

        async def pace(nbytes: int) -> None:
            await pacer().pace(organization_id=self.organization.pk, bps=self.plan.bandwidth_bps, nbytes=nbytes)

        return body_pieces(self.receive, limit=limit, pace=pace)

    async def upload(self, *, required_study_uid: str = "") -> tuple[int, dict[str, Any]]:
        """A whole payload in this request: stored, then queued for indexing (202).
        ``required_study_uid``: index only the instances of that study (STOW-RS to one study)."""
        upload = await database_sync_to_async(upload_open)(
            organization=self.organization,
            api_key=self.key,
            upload_id=self.request_id,
            content_type=self.headers.content_type.value,
            required_study_uid=required_study_uid,
        )
        if upload.state != UploadState.RECEIVING:
            await self._same_payload(upload)
            return 202, upload_answer(upload)  # the same request id again: its earlier result
        upload_id = str(upload.id)  # the request id, unless another organization had used it
        receiver = Receiver(self.headers.content_type, organization_id=self.organization.pk, upload_id=upload_id)
        body_hash = hashlib.sha256() if self.headers.sha256 is not None else None

        def feed(data: bytes) -> None:
            if body_hash is not None:
                body_hash.update(data)
            receiver.feed(data)

        try:
            pieces = self._alive(self.pieces(self.limit()), upload_id)
            await pump(pieces, feed, eager=lambda: not receiver.head_checked)
            received = await asyncio.to_thread(receiver.finish)
            if body_hash is not None:
                digest_check(self.headers.sha256, body_hash.digest())
            upload = await database_sync_to_async(upload_complete)(
                upload_id=upload_id,
                received=received,
                payload_sha256=body_hash.hexdigest() if body_hash is not None else "",
            )
        except BaseException:
            await asyncio.to_thread(receiver.abort)
            await database_sync_to_async(upload_discard)(upload_id=upload_id, organization_id=self.organization.pk)
            raise
        return 202, upload_answer(upload)

    @staticmethod
    async def _alive(pieces: AsyncIterator[bytes], upload_id: str) -> AsyncIterator[bytes]:
        """``pieces``, touching the upload every UPLOAD_HEARTBEAT_SECONDS while they arrive, so
        only a dead upload is ever taken over by a retry of its request id (upload_open)."""
        touched = time.monotonic()
        async for piece in pieces:
            if time.monotonic() - touched >= settings.UPLOAD_HEARTBEAT_SECONDS:
                await database_sync_to_async(upload_touch)(upload_id=upload_id)
                touched = time.monotonic()
            yield piece

    async def _same_payload(self, upload: Upload) -> None:
        """A request id replays only the payload it was first used for (the IETF Idempotency-Key
        draft's rule). A Content-Digest is compared with the one recorded with the first
        payload, before the body is read; otherwise the body is parsed, never stored, and the
        SHA-256 of the instances it would store compared with the upload's (its fingerprint:
        the same instances in the same order, whatever the framing). Raises ApiError 422
        ``request-id-reused`` (or the body's own refusal); nothing is stored either way."""
        if self.headers.sha256 is not None and upload.payload_sha256:
            if self.headers.sha256.hex() != upload.payload_sha256:
                raise request_id_reused(upload)
            return
        sink = DigestSink()
        parser = PayloadParser(self.headers.content_type, sink)
        body_hash = hashlib.sha256()

        def feed(data: bytes) -> None:
            body_hash.update(data)
            parser.feed(data)

        await pump(self.pieces(self.limit()), feed, eager=lambda: not parser.head_checked)
        parser.finish()
        digest_check(self.headers.sha256, body_hash.digest())
        if sink.hexdigest() != upload.sha256:
            raise request_id_reused(upload)

    async def chunk(self, chunk: ChunkHeaders) -> tuple[int, dict[str, Any]]:
        """One chunk of a stream: durable before the 202; the one completing it assembles."""
        high = max_chunk_seq(self.plan.max_study_bytes)
        if chunk.seq > high:
            raise ApiError(
                400,
                f"X-Chunk-Seq must be an integer from 0 to {high}: the plan's study size in chunks of "
                f"at least {settings.STREAMS_MIN_CHUNK_BYTES} bytes.",
                slug="bad-integer",
                parameter="X-Chunk-Seq",
            )
        slot = await database_sync_to_async(stream_open)(
            organization=self.organization,
            stream_id=chunk.stream_id,
            seq=chunk.seq,
            content_type=self.headers.content_type,
        )
        received: ReceivedChunk | None = None
        try:
            received = await self._chunk_receive(chunk, slot)
            stored = await database_sync_to_async(chunk_store, thread_sensitive=False)(
                stream_pk=slot.pk,
                chunk=received,
                api_key=self.key,
                request_id=self.request_id,
                max_total=self.plan.max_study_bytes,
            )
        except BaseException:
            if received is not None and received.writer is not None:
                await asyncio.to_thread(received.writer.abort)
            if slot.created:
                await database_sync_to_async(stream_forget)(stream_pk=slot.pk)
            raise
        upload = await self._stream_upload(slot, stored)
        assembled = upload is not None and upload.state != UploadState.RECEIVING
        return 202, {
            "request_id": self.request_id,
            "stream_id": chunk.stream_id,
            "seq": chunk.seq,
            "bytes": received.size,
            "sha256": received.sha256,
            "stream_state": StreamState.COMPLETE if assembled else stored.stream_state,
            "links": {"stream": {"href": stream_href(chunk.stream_id)}},
            "upload": upload_answer(upload) if upload is not None else None,
        }

    async def _chunk_receive(self, chunk: ChunkHeaders, slot: StreamSlot) -> ReceivedChunk:
        """The chunk's body, hashed and written (only hashed when the stream holds this seq
        already: a retry is never written); what was written is dropped if that fails."""
        writer = None
        # The first chunk carries the payload's head: check it as it arrives (422 early).
        fresh = slot.held_sha256 is None or slot.replaceable  # bytes to write, not only to hash
        first = chunk.seq == 0 and fresh
        check = PayloadParser(self.headers.content_type, NullSink()) if first else None
        chunk_hash = hashlib.sha256()
        nbytes = 0
        try:
            pieces = self.pieces(self.limit(slot.held_bytes))
            if fresh:
                writer = await asyncio.to_thread(storage().writer, chunk_key(self.organization.pk, slot.pk, chunk.seq))

            def feed(data: bytes) -> None:
                nonlocal nbytes
                nbytes += len(data)
                chunk_hash.update(data)
                if writer is not None:
                    writer.write(data)
                if check is not None and not check.head_checked:
                    check.feed(data)

            await pump(pieces, feed, eager=lambda: check is not None and not check.head_checked)
            digest_check(self.headers.sha256, chunk_hash.digest())
        except BaseException:
            if writer is not None:
                await asyncio.to_thread(writer.abort)
            raise
        return ReceivedChunk(seq=chunk.seq, last=chunk.last, size=nbytes, sha256=chunk_hash.hexdigest(), writer=writer)

    async def _stream_upload(self, slot: StreamSlot, stored: ChunkStored) -> Upload | None:
        """The stream's upload: once assembled when this chunk completed the stream (raising the
        assembly's refusal), or the one it already had (a late retry of a chunk of a complete
        stream)."""
        upload: Upload | None = None
        if stored.assemble_as is not None:
            upload = await self._assembled(slot.pk, stored.assemble_as)
        elif stored.upload_id is not None and stored.stream_state == StreamState.COMPLETE:
            upload = await database_sync_to_async(upload_get)(
                organization=self.organization, upload_id=stored.upload_id
            )
        return upload

    async def _assembled(self, stream_pk: int, upload_id: str) -> Upload | None:
        """The upload once a worker assembled it (studies/ingest/assembly.py), looked at with
        backoff; still `receiving` when STREAMS_ASSEMBLY_WAIT_SECONDS run out first. Raises the
        assembly's refusal (ApiError)."""
        deadline = time.monotonic() + settings.STREAMS_ASSEMBLY_WAIT_SECONDS
        pause = _FIRST_POLL_S
        while True:
            upload: Upload | None = await database_sync_to_async(assembly_outcome)(
                stream_pk=stream_pk, upload_id=upload_id
            )
            if upload is not None:
                return upload
            if time.monotonic() >= deadline:
                late: Upload | None = await database_sync_to_async(upload_get)(
                    organization=self.organization, upload_id=upload_id
                )
                return late
            await asyncio.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, _LAST_POLL_S)
