"""The periodic clean-up of ingest: streams left open, uploads left `receiving`, writes left
half-done, all older than PRIZMED_STREAM_TTL (the beat job ``studies.expire_streams``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from studies.ingest.assembly import stream_finish
from studies.ingest.uploads import uploads_sweep
from studies.models import Stream, StreamState
from studies.objects.store import storage


def streams_expire(*, before: datetime) -> int:
    """Expire open streams idle since ``before`` and free their chunks (the periodic job)."""
    expired = 0
    idle = Stream.objects.filter(state=StreamState.OPEN, upload__isnull=True, updated__lt=before)
    for pk in list(idle.values_list("pk", flat=True)):
        with transaction.atomic():
            stream = Stream.objects.select_for_update().filter(pk=pk, state=StreamState.OPEN).first()
            # Re-checked under the lock: a chunk may have arrived or completed it meanwhile.
            if stream is None or stream.upload_id is not None or stream.updated >= before:
                continue
            stream_finish(stream, StreamState.EXPIRED)
            expired += 1
    return expired


def ingest_expire(*, now: datetime | None = None) -> tuple[int, int, int]:
    """The periodic job: expire streams idle for PRIZMED_STREAM_TTL seconds, and remove uploads
    stuck `receiving` that long and temp files not written to for as long (their process
    died). Returns (streams, uploads, temp files) removed."""
    before = (now or timezone.now()) - timedelta(seconds=settings.PRIZMED_STREAM_TTL)
    partials = storage().partials_sweep(before=before.timestamp())
    return streams_expire(before=before), uploads_sweep(before=before), partials
