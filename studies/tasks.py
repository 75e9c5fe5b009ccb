"""The studies app's Celery tasks, for Celery's autodiscovery (it imports `<app>.tasks`): each
wing keeps its own, under the task names queued messages already carry."""

from __future__ import annotations

from studies.index.tasks import index_stalled, index_upload, index_upload_part
from studies.ingest.tasks import assemble_stream, expire_streams
from studies.objects.tasks import sweep_pending_objects

__all__ = [
    "assemble_stream",
    "expire_streams",
    "index_stalled",
    "index_upload",
    "index_upload_part",
    "sweep_pending_objects",
]
