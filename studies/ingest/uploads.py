"""Writes to uploads: open one for a request id, complete it (and queue indexing), discard it.

An Upload row exists from the moment its bytes start arriving (`receiving`), so the same
request id sent again meanwhile is a conflict and one sent after completion replays the
result. A refused or abandoned upload leaves nothing: its objects and its row go.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.models import APIKey, Organization
from core import metrics
from core.errors import conflict
from outbox.dispatch import outbox_add
from studies.index.tasks import index_upload
from studies.ingest.object_keys import upload_prefix
from studies.ingest.receiver import Received
from studies.models import Upload, UploadItem, UploadState
from studies.objects.store import storage


def upload_open(
    *,
    organization: Organization,
    api_key: APIKey | None,
    upload_id: str,
    content_type: str,
    required_study_uid: str = "",
) -> Upload:
    """Create the `receiving` upload; a completed one of this organization with this id is
    returned as it is (the caller replays its result). Raises ApiError 409 while that id is
    still receiving. Upload ids are global but tenants are not: when another organization
    already used the id, this upload quietly gets a fresh one, so nothing says the id exists.
    ``required_study_uid`` (STOW-RS to one study) keeps other studies' instances out."""
    fields = {"organization": organization, "api_key": api_key, "content_type": content_type}
    fields["required_study_uid"] = required_study_uid
    try:
        with transaction.atomic():
            return Upload.objects.create(id=upload_id, **fields)
    except IntegrityError:
        existing = Upload.objects.filter(pk=upload_id).first()
    if existing is None or existing.organization_id != organization.pk:
        return Upload.objects.create(id=uuid.uuid4(), **fields)
    if existing.state == UploadState.RECEIVING:
        raise conflict("An upload with this X-Request-Id is still being received.") from None
    return existing


def upload_id_free(upload_id: str) -> str:
    """``upload_id`` if no upload has it yet, else a fresh uuid4 (for stream reassembly)."""
    return str(uuid.uuid4()) if Upload.objects.filter(pk=upload_id).exists() else upload_id


def upload_complete(*, upload_id: str, received: Received, payload_sha256: str = "") -> Upload:
    """Record the stored instances and queue the upload for indexing, exactly once.
    ``payload_sha256`` (hex): of the request body, which a replay of the request id must match."""
    now = timezone.now()
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=upload_id)
        UploadItem.objects.bulk_create(
            UploadItem(
                upload=upload,
                position=i.position,
                object_key=i.object_key,
                size=i.size,
                sha256=i.sha256,
                **UploadItem.file_meta_columns(i.meta),
            )
            for i in received.items
        )
        upload.state = UploadState.QUEUED
        upload.bytes_received = received.bytes_received
        upload.sha256 = received.sha256
        upload.instances_received = len(received.items)
        upload.payload_sha256 = payload_sha256
        upload.updated = now
        upload.save(
            update_fields=["state", "bytes_received", "sha256", "instances_received", "payload_sha256", "updated"]
        )
        # In this transaction: a broker down after the commit delays indexing, never loses it.
        outbox_add(index_upload, str(upload.id))
    metrics.UPLOAD_BYTES.inc(received.bytes_received)  # committed: the 202 follows
    metrics.UPLOAD_INSTANCES.inc(len(received.items))
    return upload


def upload_discard(*, upload_id: str, organization_id: int) -> None:
    """Remove a `receiving` upload and every object under its prefix (its own or a dead
    process's). A completed upload is never touched."""
    receiving = Upload.objects.filter(pk=upload_id, state=UploadState.RECEIVING)
    if not receiving.exists():
        return
    # Objects first: a crash in between leaves a row the sweep finds again, never lost bytes.
    for key in list(storage().keys(upload_prefix(organization_id, upload_id))):
        storage().delete(key)
    receiving.delete()


def uploads_sweep(*, before: datetime) -> int:
    """Discard uploads stuck in `receiving` since ``before``: their process died mid-body."""
    stale = list(
        Upload.objects.filter(state=UploadState.RECEIVING, updated__lt=before).values_list("pk", "organization_id")
    )
    for upload_id, organization_id in stale:
        upload_discard(upload_id=str(upload_id), organization_id=organization_id)
    return len(stale)
