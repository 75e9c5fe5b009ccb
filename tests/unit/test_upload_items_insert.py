"""studies.ingest.uploads._items_insert: an upload's items go in as plain rows (COPY on
PostgreSQL, executemany on SQLite), and each row is the one the ORM would have written."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, transaction

from accounts.services import organization_ensure
from dicom.part10 import FileMeta
from studies.ingest.instance_store import StoredItem
from studies.ingest.uploads import _items_insert
from studies.models import Upload, UploadItem

pytestmark = pytest.mark.django_db

METAS = [
    FileMeta("1.2.840.10008.1.2.1", "1.2.840.10008.5.1.4.1.1.2", "1.2.826.0.1.3680043.2.1", 342),
    FileMeta("1.2.840.10008.1.2", "1.2.840.10008.5.1.4.1.1.4", None, 200),  # no (0002,0003)
]


def _rows(upload: Upload) -> list[dict[str, Any]]:
    return [
        {k: v for k, v in row.items() if k not in ("id", "upload_id")}
        for row in UploadItem.objects.filter(upload=upload).order_by("position").values()
    ]


def test_it_writes_the_rows_the_orm_would() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    ours, orms = (Upload.objects.create(organization=org, content_type="application/dicom") for _ in range(2))
    items = [
        StoredItem(n, f"uploads/{org.pk}/{ours.pk}/{n:06d}.dcm", 80_000 + n, f"{n:064x}", METAS[n % 2])
        for n in range(3)
    ]

    _items_insert(ours, items)
    UploadItem.objects.bulk_create(
        UploadItem(upload=orms, position=i.position, object_key=i.object_key, size=i.size, sha256=i.sha256,
                   **UploadItem.file_meta_columns(i.meta))
        for i in items
    )  # fmt: skip

    assert _rows(ours) == _rows(orms)
    uid = "1.2.826.0.1.3680043.2.1"
    assert [r["media_storage_sop_instance_uid"] for r in _rows(ours)] == [uid, "", uid]
    assert {r["state"] for r in _rows(ours)} == {"stored"} and ours.items.count() == 3


def test_it_inserts_nothing_for_no_items() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    upload = Upload.objects.create(organization=org, content_type="application/dicom")

    _items_insert(upload, [])

    assert not upload.items.exists()


def test_a_refused_insert_raises_djangos_integrity_error() -> None:
    # A DatabaseError the request maps to its answer (a lost database: 503), whichever backend.
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    upload = Upload.objects.create(organization=org, content_type="application/dicom")
    item = StoredItem(0, f"uploads/{org.pk}/{upload.pk}/000000.dcm", 80_000, "0" * 64, METAS[0])
    _items_insert(upload, [item])

    with pytest.raises(IntegrityError), transaction.atomic():
        _items_insert(upload, [item])  # the same position again: uploaditem_position
