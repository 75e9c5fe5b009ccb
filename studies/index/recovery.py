"""Uploads acknowledged and never indexed because their task was lost: found and sent again.

The outbox guarantees a task reaches the broker (docs/reliability.md); what it cannot cover is the
broker losing it afterwards (a Redis restarted without persistence drops its queues) or a worker
failing to send the parts of a big upload it split. Such an upload sits `queued` or `indexing`
with nothing to move it on. Indexing is idempotent (a batch takes only items still `stored`,
under the upload's lock), so sending its task again is always safe.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from studies.models import Upload, UploadState

STALLED_PER_SWEEP = 500


def uploads_stalled_claim(*, before: datetime, limit: int = STALLED_PER_SWEEP) -> list[str]:
    """Ids of uploads `queued` or `indexing` whose row has not changed since ``before`` (every
    indexing batch sets ``updated``), oldest first. Their ``updated`` becomes now, so each is
    sent again at most once per stall window; rows a running batch holds locked are passed by
    (SKIP LOCKED: they are alive)."""
    with transaction.atomic():
        stalled = list(
            Upload.objects.select_for_update(skip_locked=True)
            .filter(state__in=[UploadState.QUEUED, UploadState.INDEXING], updated__lt=before)
            .order_by("updated")
            .values_list("pk", flat=True)[:limit]
        )
        Upload.objects.filter(pk__in=stalled).update(updated=timezone.now())
    return [str(pk) for pk in stalled]
