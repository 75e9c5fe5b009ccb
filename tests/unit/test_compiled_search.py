"""CompiledSearch gives what the QuerySet's slice gives, for values Django binds unchanged and for
those it converts (LIKE patterns, dates and times as text on SQLite), in one query a run."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

import pytest
from django.db import connection
from django.db.models import Q, QuerySet
from django.test.utils import CaptureQueriesContext

from accounts.models import Organization
from accounts.services import organization_ensure
from core.compiled_search import CompiledSearch
from studies.models import Patient, Study

pytestmark = pytest.mark.django_db

FIELDS = ("id", "study_uid", "study_date", "study_time", "description", "modalities", "patient__name")


def _build(shape: tuple[str, ...], values: Sequence[Any]) -> QuerySet[Any]:
    """Studies of the organization values[0], each lookup of ``shape`` taking the next value (an
    ``__in`` lookup, last, the rest)."""
    bound = iter(values)
    rows: QuerySet[Any] = Study.objects.filter(organization_id=next(bound))
    for lookup in shape:
        rows = rows.filter(Q(**{lookup: list(bound) if lookup.endswith("__in") else next(bound)}))
    return rows.order_by("-id").values(*FIELDS)


@pytest.fixture
def orgs() -> tuple[Organization, Organization]:
    acme = organization_ensure(slug="acme", plan_slug="professional", name="Acme")
    globex = organization_ensure(slug="globex", plan_slug="professional", name="Globex")
    descriptions = ["100% lung", "100X lung", "a_b", "aXb", "back\\slash", "plain", "Plain old", "café"]
    for n, text in enumerate(descriptions):
        for org in (acme, globex):
            patient = Patient.objects.create(organization=org, patient_id=f"P{n}", name=f"Doe{n}^Jane")
            Study.objects.create(
                organization=org,
                patient=patient,
                study_uid=f"1.2.{n}",
                description=text,
                study_date=datetime.date(2024, 1, 1) + datetime.timedelta(days=n),
                study_time=datetime.time(10, n, 30, 500000 if n % 2 else 0),
                modalities=["CT", "MR"][: 1 + n % 2],
                instance_count=n,
            )
    return acme, globex


CASES: list[tuple[tuple[str, ...], list[list[object]]]] = [
    (("description",), [["plain"], ["100% lung"], ["nothing"]]),
    (("description__startswith",), [["100%"], ["a_"], ["back\\"], ["P"], [""]]),
    (("description__istartswith",), [["PLAIN"], ["100%"], ["A_"], ["CAF"]]),
    (("description__iexact",), [["PLAIN"], ["a_b"], ["A%"], ["back\\slash"]]),
    (("description__contains",), [["%"], ["_"], ["lung"]]),
    (("description__endswith",), [["_b"], ["lung"]]),
    (("description__regex",), [["^a.b$"], ["lung$"]]),
    (("description__iregex",), [["^PLAIN"], ["(^|[ ])old"]]),
    (("study_date__gte", "study_date__lte"), [[datetime.date(2024, 1, 2), datetime.date(2024, 1, 4)]]),
    (("study_date",), [[datetime.date(2024, 1, 3)], [datetime.date(2023, 1, 3)]]),
    (("study_time__gte", "study_time__lte"), [[datetime.time(10, 2), datetime.time(10, 5, 59, 999999)]]),
    (("study_time",), [[datetime.time(10, 1, 30, 500000)], [datetime.time(10, 2, 30)]]),
    (("study_uid__in",), [[["1.2.1", "1.2.5"]]]),
    (("instance_count__lte", "series_count"), [[3, 0], [0, 0], [5, 1]]),
    (("patient__name__iexact", "study_date__lte"), [["DOE3^JANE", datetime.date(2030, 1, 1)]]),
]


@pytest.mark.parametrize(("shape", "runs"), CASES, ids=["+".join(shape) for shape, _ in CASES])
def test_it_returns_the_rows_the_queryset_returns(orgs: tuple[Organization, Organization], shape, runs) -> None:
    search = CompiledSearch(_build)
    for org in (*orgs, orgs[0]):  # the same shape again: the kept plan, with other values
        for run in runs:
            values = _values(org, run)
            for offset, limit in ((0, 100), (0, 2), (1, 2), (3, 100)):
                expected = list(_build(shape, values)[offset : offset + limit])
                with CaptureQueriesContext(connection) as queries:
                    got = search.dicts(shape, values, offset=offset, limit=limit)
                assert got == expected, (shape, run, offset, limit)
                assert len(queries) == 1
                assert search.plan(shape, values, paged=offset > 0) is not None  # compiled, not the QuerySet


def _values(org: Organization, run: list[object]) -> list[object]:
    # An IN list is one value per element: the shape says how many.
    return [org.pk, *(v for item in run for v in (item if isinstance(item, list) else [item]))]


def test_it_finds_something_in_the_cases_it_checks(orgs: tuple[Organization, Organization]) -> None:
    # The equality above would hold for searches that find nothing; these find what they should.
    search = CompiledSearch(_build)
    acme = orgs[0].pk

    def uids(shape: tuple[str, ...], *values: object) -> list[str]:
        return sorted(row["study_uid"] for row in search.dicts(shape, [acme, *values], offset=0, limit=100))

    assert uids(("description__startswith",), "100%") == ["1.2.0"]  # % is not a wildcard
    assert uids(("description__startswith",), "a_") == ["1.2.2"]  # nor _
    assert uids(("description__iexact",), "PLAIN") == ["1.2.5"]
    assert uids(("study_date__gte", "study_date__lte"), datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)) == [
        "1.2.1",
        "1.2.2",
    ]
    assert uids(("study_time",), datetime.time(10, 1, 30, 500000)) == ["1.2.1"]
    row = search.dicts(("study_uid__in",), [acme, "1.2.1"], offset=0, limit=1)[0]
    assert row["modalities"] == ["CT", "MR"] and row["study_date"] == datetime.date(2024, 1, 2)  # converters


def test_it_runs_the_queryset_for_what_it_cannot_compile(orgs: tuple[Organization, Organization]) -> None:
    acme = orgs[0].pk
    # A value Django turns into something it does not know: not compiled, still answered.
    cut = CompiledSearch(lambda shape, values: _build(("description",), [values[0], str(values[1])[:5]]))
    for _ in range(3):  # compiled (tried) the second time
        assert cut.plan((), [acme, "plain old"], paged=False) is None
    assert [r["description"] for r in cut.dicts((), [acme, "plain old"], offset=0, limit=10)] == ["plain"]
    # An integer past the columns' range: Django drops its lookup, so the SQL is not the shape's.
    search = CompiledSearch(_build)
    assert search.plan(("id",), [acme, 2**31], paged=False) is None
    assert search.dicts(("id",), [acme, 2**31], offset=0, limit=10) == []
    # Not a .values() QuerySet.
    models = CompiledSearch(lambda shape, values: Study.objects.filter(pk__gte=values[0]).order_by("id"))
    for _ in range(3):
        assert models.plan((), [acme], paged=False) is None
    # A shape that compiles: not the first time it is asked for, from the second on.
    search = CompiledSearch(_build)
    assert [search.plan(("description",), [acme, "x"], paged=False) is not None for _ in range(3)] == [
        False,
        True,
        True,
    ]


def test_it_keeps_the_last_shapes_only(orgs: tuple[Organization, Organization]) -> None:
    search = CompiledSearch(_build, size=2)
    acme = orgs[0].pk
    for shape in (("description",), ("study_uid",), ("description__iexact",)):
        search.dicts(shape, [acme, "plain"], offset=0, limit=10)
    assert list(search._local.plans) == [(("study_uid",), False), (("description__iexact",), False)]
