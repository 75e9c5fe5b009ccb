"""studies.index.item_outcomes: the raw UPDATE ... FROM (VALUES ...) writes what bulk_update
writes, on the database of this run (SQLite embedded, PostgreSQL in the services run)."""

from __future__ import annotations

import pytest

from accounts.services import organization_ensure
from studies.index.item_outcomes import OUTCOME_FIELDS, item_outcomes_write
from studies.models import ItemState, Upload, UploadItem

pytestmark = pytest.mark.django_db


def _items(count: int) -> list[UploadItem]:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    upload = Upload.objects.create(organization=org, content_type="application/dicom")
    return [
        UploadItem.objects.create(upload=upload, position=n, object_key=f"k/{n}", size=1, sha256="0" * 64)
        for n in range(count)
    ]


def _outcomes(items: list[UploadItem]) -> None:
    """What an indexing batch decides: indexed, rejected with reasons (quotes, non-ASCII, NUL-free)."""
    for n, item in enumerate(items):
        if n % 3:
            item.state, item.sop_instance_uid = ItemState.INDEXED, f"1.2.3.{n}"
            item.study_instance_uid, item.series_instance_uid, item.replaced = "1.2", f"1.2.{n}", n % 2 == 0
            item.warnings = [{"code": "value-too-long", "message": f"Müller's value {n}"}] if n % 2 else []
        else:
            item.state, item.reason_code, item.reason = ItemState.REJECTED, "invalid-uid", f"Müller's file {n} 'bad'"


def _stored(items: list[UploadItem]) -> list[tuple[object, ...]]:
    rows = UploadItem.objects.filter(pk__in=[i.pk for i in items]).order_by("position")
    return list(rows.values_list("position", *OUTCOME_FIELDS))


def test_it_writes_what_bulk_update_writes() -> None:
    fenced, plain = _items(7), _items(7)
    _outcomes(fenced)
    _outcomes(plain)

    item_outcomes_write(fenced)
    UploadItem.objects.bulk_update(plain, OUTCOME_FIELDS)

    assert _stored(fenced) == _stored(plain)
    assert {row[1] for row in _stored(fenced)} == {ItemState.INDEXED, ItemState.REJECTED}


def test_it_touches_only_the_items_it_is_given() -> None:
    items = _items(3)
    untouched = _stored(items[2:])
    _outcomes(items)
    item_outcomes_write(items[:2])
    item_outcomes_write([])
    assert _stored(items[2:]) == untouched
