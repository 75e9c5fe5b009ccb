"""Reassembly of a chunked stream (API.md §1) by a worker, not by the request that completed it.

The transaction that stores a stream's last missing chunk links a `receiving` upload to the
stream and queues ``studies.assemble_stream`` for it (through the outbox: never lost). The task
reads the chunk objects once, in order, through the same Receiver as a single request (the
payload checked, split into instances and hashed) and has the store compose each large instance
from the chunks' extents (studies/ingest/instance_store.py). The API process, which received
every chunk once already, moves no payload byte again (issue 15). The request that completed the
stream waits for the outcome (``assembly_outcome``) and answers with it.

A payload refused at assembly leaves the stream open with its chunks and the refusal recorded
(``Stream.assembly_problem``), resumable by a corrected chunk (docs/ingest.md); its upload goes.
A failure of ours (the store down) is recorded the same way, and retried by sending any chunk
again. A worker killed mid-way is re-delivered the task, which starts over.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core.errors import ApiError, conflict
from studies.ingest.chunked_body import ChunkedBody
from studies.ingest.content_type import content_type_parse
from studies.ingest.object_keys import upload_prefix
from studies.ingest.receiver import Receiver
from studies.ingest.refusals import answer_for
from studies.ingest.uploads import upload_complete, upload_discard, upload_touch
from studies.models import Chunk, Stream, StreamState, Upload, UploadState
from studies.objects.deletion import objects_delete_on_commit
from studies.objects.store import storage

log = logging.getLogger("prizmed.ingest")
READ_PIECE_BYTES = 1024 * 1024


def stream_assemble(*, stream_pk: int, upload_id: str) -> None:
    """Assemble stream ``stream_pk`` as its upload ``upload_id`` and complete both; or record
    why not. A no-op unless that upload is still the stream's and `receiving` (a task delivered
    again after it finished)."""
    stream = Stream.objects.filter(pk=stream_pk, upload_id=upload_id, upload__state=UploadState.RECEIVING).first()
    if stream is None:
        return
    chunks = list(Chunk.objects.filter(stream=stream).order_by("seq").values_list("object_key", "size"))
    touched = time.monotonic()
    receiver: Receiver | None = None
    try:
        # Delivered again because a worker died mid-way: what that run wrote goes first.
        storage().delete_many(list(storage().keys(upload_prefix(stream.organization_id, upload_id))))
        receiver = Receiver(
            content_type_parse(stream.content_type),
            organization_id=stream.organization_id,
            upload_id=upload_id,
            source=ChunkedBody(chunks),
        )
        for key, size in chunks:
            with storage().open_range(key, 0, size) as fh:  # one ranged GET per chunk on S3
                while piece := fh.read(READ_PIECE_BYTES):
                    receiver.feed(piece)
            if time.monotonic() - touched >= settings.UPLOAD_HEARTBEAT_SECONDS:
                upload_touch(upload_id=upload_id)  # alive: the sweep of dead uploads passes it by
                touched = time.monotonic()
        received = receiver.finish()
    except Exception as exc:  # noqa: BLE001 - answer_for logs what is not a refusal
        _refused(stream, upload_id, answer_for(exc), receiver)
        return
    with transaction.atomic():
        upload_complete(upload_id=upload_id, received=received)
        stream_finish(stream, StreamState.COMPLETE)


def _refused(stream: Stream, upload_id: str, problem: ApiError, receiver: Receiver | None) -> None:
    """Record why, and unlink the upload (the stream stays open with its chunks, resumable) in
    the transaction that drops it and what it wrote, so the answer the client then gets leaves
    nothing behind. With the store down the drop fails too: the stream is unlinked all the same
    and the upload, `receiving` and linked to nothing, is left to the sweep of dead uploads."""
    record = {"upload_id": upload_id, "status": problem.status, "slug": problem.slug, "detail": problem.detail,
              "headers": [list(pair) for pair in problem.headers]}  # fmt: skip

    def unlink() -> None:
        Stream.objects.filter(pk=stream.pk, upload_id=upload_id).update(
            upload=None, assembly_problem=record, updated=timezone.now()
        )

    try:
        if receiver is not None:
            receiver.abort()  # the object it was writing too (an S3 multipart upload left open)
        with transaction.atomic():
            unlink()
            upload_discard(upload_id=upload_id, organization_id=stream.organization_id)
    except OSError as exc:  # StorageUnavailable included
        log.warning("upload %s of stream %s left for the sweep of dead uploads: %s", upload_id, stream.pk, exc)
        with transaction.atomic():
            unlink()


def assembly_outcome(*, stream_pk: int, upload_id: str) -> Upload | None:
    """The upload once its assembly is over (`queued` or later); None while it runs. Raises the
    refusal recorded for it (ApiError), or ApiError 409 when its stream was claimed again since."""
    upload = Upload.objects.filter(pk=upload_id).first()
    if upload is not None and upload.state != UploadState.RECEIVING:
        return upload
    row = Stream.objects.filter(pk=stream_pk).values_list("upload_id", "assembly_problem").first()
    linked, problem = row if row is not None else (None, None)
    if linked is not None and str(linked) == upload_id:
        return None  # still the stream's: being assembled
    # Unlinked: refused (its upload dropped, or left `receiving` for the sweep), or claimed again.
    if problem is not None and problem.get("upload_id") == upload_id:
        headers = [(str(name), str(value)) for name, value in problem.get("headers", [])]
        raise ApiError(problem["status"], problem["detail"], slug=problem.get("slug"), headers=headers)
    raise conflict("The stream's payload was assembled again by a later chunk; follow the stream's state.")


def stream_finish(stream: Stream, state: str) -> None:
    """Set the stream's final state; delete its chunk objects once that is committed (rows stay,
    so a late retry of a chunk still meets its digest)."""
    stream.state = state
    stream.updated = timezone.now()
    stream.save(update_fields=["state", "updated"])
    # Recorded as pending in this transaction: a crash before the unlink leaves work for the
    # sweep, never a chunk file nothing points at.
    objects_delete_on_commit(Chunk.objects.filter(stream=stream).values_list("object_key", flat=True))
