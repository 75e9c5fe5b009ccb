"""Writes to uploads: open one for a request id, complete it (and queue indexing), discard it.

An Upload row exists from the moment its bytes start arriving (`receiving`), so the same
request id sent again meanwhile is a conflict and one sent after completion replays the
result. A refused or abandoned upload leaves nothing: its objects and its row go.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.models import APIKey, Organization
from core import metrics
from core.compiled_lookup import CompiledLookup
from core.errors import ApiError
from outbox.dispatch import outbox_add
from studies.index.tasks import index_upload
from studies.ingest.instance_store import StoredItem
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
        dead_at = existing.updated + timedelta(seconds=settings.UPLOAD_STALE_SECONDS)
        if dead_at > timezone.now():
            # Retry-After: when it will count as dead if nothing more arrives for it.
            wait = max(1, math.ceil((dead_at - timezone.now()).total_seconds()))
            raise ApiError(
                409,
                "An upload with this X-Request-Id is still being received.",
                slug="conflict",
                headers=[("Retry-After", str(wait))],
            ) from None
        # Dead (its connection stalled or its process lost the database mid-body): the retry
        # takes the id over, so a client is never locked out of its own request id.
        upload_discard(upload_id=upload_id, organization_id=organization.pk)
        return upload_open(
            organization=organization,
            api_key=api_key,
            upload_id=upload_id,
            content_type=content_type,
            required_study_uid=required_study_uid,
        )
    return existing


def upload_touch(*, upload_id: str) -> None:
    """A `receiving` upload is alive: its body is still arriving (see UPLOAD_STALE_SECONDS)."""
    Upload.objects.filter(pk=upload_id, state=UploadState.RECEIVING).update(updated=timezone.now())


def upload_id_free(upload_id: str) -> str:
    """``upload_id`` if no upload has it yet, else a fresh uuid4 (for stream reassembly)."""
    return str(uuid.uuid4()) if Upload.objects.filter(pk=upload_id).exists() else upload_id


# Compiled once (core/compiled_lookup.py): every upload request locks its row here.
_upload_locked: CompiledLookup[Upload] = CompiledLookup(
    lambda pk: Upload.objects.select_for_update().filter(pk=pk), pk=uuid.UUID(int=0xF00D)
)


def upload_complete(*, upload_id: str, received: Received, payload_sha256: str = "") -> Upload:
    """Record the stored instances and queue the upload for indexing, exactly once.
    ``payload_sha256`` (hex): of the request body, which a replay of the request id must match."""
    now = timezone.now()
    with transaction.atomic():
        upload = _upload_locked.first(pk=uuid.UUID(str(upload_id)))
        if upload is None:
            raise Upload.DoesNotExist(upload_id)
        _items_insert(upload, received.items)
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


def _items_insert(upload: Upload, items: Sequence[StoredItem]) -> None:
    """Insert one UploadItem row per stored instance, without a model instance per row.

    ``bulk_create`` builds and prepares a model instance per item, ~17 fields each, in Python:
    the largest per-instance cost of ``upload_complete`` (docs/benchmarks.md, "Receipt
    per-instance cost"). Here every column but the item's own is prepared once, from the
    model's defaults, and the rows go as plain tuples: PostgreSQL's COPY (psycopg formats
    the rows in C), executemany elsewhere. Raises what the insert raises (IntegrityError)."""
    if not items:
        return
    own = [_item_columns(item) for item in items]
    own_names = list(own[0])
    others = [f for f in UploadItem._meta.concrete_fields if not f.primary_key and f.attname not in own[0]]
    upload_field = UploadItem._meta.get_field("upload")
    constant = tuple(
        f.get_db_prep_save(upload.pk if f is upload_field else f.get_default(), connection) for f in others
    )
    rows = [(*columns.values(), *constant) for columns in own]
    table = connection.ops.quote_name(UploadItem._meta.db_table)
    names = ", ".join(connection.ops.quote_name(n) for n in [*own_names, *(cast(str, f.column) for f in others)])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # psycopg's own cursor: its errors become Django's (DatabaseError: a lost database
            # is the request's 503) as they would through cursor.execute.
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            placeholders = ", ".join(["%s"] * len(rows[0]))
            cursor.executemany(f"INSERT INTO {table} ({names}) VALUES ({placeholders})", rows)


def _item_columns(item: StoredItem) -> dict[str, Any]:
    """The columns of ``item``'s row that are its own, by column name (each is its attname)."""
    return {
        "position": item.position,
        "object_key": item.object_key,
        "size": item.size,
        "sha256": item.sha256,
        **UploadItem.file_meta_columns(item.meta),
    }


def upload_discard(*, upload_id: str, organization_id: int) -> None:
    """Remove a `receiving` upload and every object under its prefix (its own or a dead
    process's). A completed upload is never touched."""
    receiving = Upload.objects.filter(pk=upload_id, state=UploadState.RECEIVING)
    if not receiving.exists():
        return
    # Objects first: a crash in between leaves a row the sweep finds again, never lost bytes.
    storage().delete_many(list(storage().keys(upload_prefix(organization_id, upload_id))))
    receiving.delete()


def uploads_sweep(*, before: datetime) -> int:
    """Discard uploads stuck in `receiving` since ``before``: their process died mid-body."""
    stale = list(
        Upload.objects.filter(state=UploadState.RECEIVING, updated__lt=before).values_list("pk", "organization_id")
    )
    for upload_id, organization_id in stale:
        upload_discard(upload_id=str(upload_id), organization_id=organization_id)
    return len(stale)
