"""search_values_replace rewrites only the search values that changed: the index a search reads is
always the resource's, and a resource written again unchanged costs one read (records/search.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.services import organization_ensure
from records.models import EventKind, RecordResource, RecordSearchValue
from records.search import search_values, search_values_replace

pytestmark = pytest.mark.django_db


def _patient(family: str, birth_date: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": "p1",
        "identifier": [{"system": "urn:x", "value": "P1"}],
        "name": [{"family": family, "given": ["Jane", "Jane"]}],  # a value indexed twice
        "birthDate": birth_date,
        "gender": "female",
    }


def _indexed(row: RecordResource) -> list[tuple[Any, ...]]:
    values = RecordSearchValue.objects.filter(resource=row)
    return sorted((v.param, v.system, v.value, v.low, v.high) for v in values)


def _expected(row: RecordResource) -> list[tuple[Any, ...]]:
    return sorted((name, v.system, v.value, v.low, v.high) for name, v in search_values(row.kind, row.resource))


def _write(row: RecordResource, resource: dict[str, Any]) -> None:
    row.resource = resource
    row.save()
    search_values_replace(rows=[row])


def test_only_the_values_that_changed_are_rewritten() -> None:
    org = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    row = RecordResource.objects.create(organization=org, kind=EventKind.PATIENT, key="P1", seq=1, resource={})
    with transaction.atomic():
        _write(row, _patient("Doe", "1970-01-02"))
    assert _indexed(row) == _expected(row)
    ids = dict(RecordSearchValue.objects.filter(resource=row).values_list("param", "id"))

    with transaction.atomic(), CaptureQueriesContext(connection) as queries:
        search_values_replace(rows=[row])  # unchanged: read, nothing written
    assert len(queries) == 1 and queries[0]["sql"].startswith("SELECT")

    with transaction.atomic():
        _write(row, _patient("Roe", "1970-01-02"))
    assert _indexed(row) == _expected(row)
    assert ("family", "", "roe", None, None) in _indexed(row)
    kept = dict(RecordSearchValue.objects.filter(resource=row).values_list("param", "id"))
    assert kept["birthdate"] == ids["birthdate"] and kept["gender"] == ids["gender"]  # untouched rows
    assert kept["family"] != ids["family"]

    with transaction.atomic():
        _write(row, {**_patient("Roe", "1971"), "name": [{"family": "Roe", "given": ["Jane"]}]})
    assert _indexed(row) == _expected(row)  # one of the repeated values gone, the date moved
