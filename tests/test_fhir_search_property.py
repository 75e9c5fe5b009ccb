"""Property test (issue 13): for a generated population, FHIR search through the API's own
parser and the records' search index returns exactly what a direct query of the studies index
returns — names (case and accents folded, from the start), birth dates and study dates with
every prefix at day, month and year precision, genders and modalities."""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from datetime import date, time
from typing import Any

import pytest
from django.db import transaction
from django.db.models import Q
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Organization
from accounts.services import organization_ensure
from fhir_rest.capabilities import RESOURCES
from fhir_rest.query import search_query_parse
from records.models import RecordEvent, RecordResource
from records.search import resources_search
from studies.index.fhir import patient_resource_id
from studies.index.record_events import record_patient_changed, record_study_changed
from studies.models import Patient, Study

FAMILIES = ["Doe", "Döe", "DOE", "Smith", "Smyth", "Müller", "Muller", "Ñúñez", "Nunez", "Li"]
MODALITIES = ["CT", "MR", "US", "XA"]
PREFIXES = ["eq", "ne", "lt", "le", "gt", "ge", "sa", "eb"]
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(1992, 12, 31))


@dataclass(frozen=True)
class Person:
    family: str
    given: str
    birth_date: date | None
    sex: str
    studies: list[tuple[date | None, time | None, str]]


people = st.lists(
    st.builds(
        Person,
        family=st.sampled_from(FAMILIES),
        given=st.sampled_from(["Jane", "Jürgen", "Ann"]),
        birth_date=st.none() | dates,
        sex=st.sampled_from(["M", "F", "O", ""]),
        studies=st.lists(st.tuples(st.none() | dates, st.none() | st.times(), st.sampled_from(MODALITIES)), max_size=3),
    ),
    min_size=1,
    max_size=8,
)


def build(org: Organization, population: list[Person]) -> None:
    """The studies index rows and their record events, as the indexer writes them."""
    RecordResource.objects.filter(organization=org).delete()
    RecordEvent.objects.filter(organization=org).delete()
    Study.objects.filter(organization=org).delete()
    Patient.objects.filter(organization=org).delete()
    with transaction.atomic():
        for n, person in enumerate(population):
            patient = Patient.objects.create(
                organization=org,
                patient_id=f"P{n}",
                name=f"{person.family}^{person.given}",
                birth_date=person.birth_date,
                sex=person.sex,
            )
            record_patient_changed(patient=patient)
            for m, (day, moment, modality) in enumerate(person.studies):
                study = Study.objects.create(
                    organization=org, patient=patient, study_uid=f"1.2.{n}.{m}", study_date=day,
                    study_time=moment if day else None, modalities=[modality],
                )  # fmt: skip
                record_study_changed(study=study)


def search(org: Organization, kind: str, pairs: list[tuple[str, str]]) -> set[str]:
    query = search_query_parse(RESOURCES[kind], pairs)
    found = resources_search(organization_id=org.pk, kind=kind, criteria=query.criteria, after_id=0, limit=10_000)
    return {str(json.loads(row.body)["id"]) for row in found}


def _bounds(day: date, precision: str) -> tuple[date, date]:
    """[low, high) of a date at day, month or year precision."""
    if precision == "year":
        return date(day.year, 1, 1), date(day.year + 1, 1, 1)
    if precision == "month":
        return date(day.year, day.month, 1), date(day.year + day.month // 12, day.month % 12 + 1, 1)
    return day, date.fromordinal(day.toordinal() + 1)


def date_lookup(field: str, prefix: str, low: date, high: date) -> Q:
    """The direct index query of a date search: the column's day against [low, high)."""
    present = Q(**{f"{field}__isnull": False})
    inside = Q(**{f"{field}__gte": low, f"{field}__lt": high})
    return (
        present
        & {
            "eq": inside,
            "ne": ~inside,
            "lt": Q(**{f"{field}__lt": low}),
            "le": Q(**{f"{field}__lt": high}),
            "gt": Q(**{f"{field}__gte": high}),
            "ge": Q(**{f"{field}__gte": low}),
            "sa": Q(**{f"{field}__gte": high}),
            "eb": Q(**{f"{field}__lt": low}),
        }[prefix]
    )


def _plain(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if unicodedata.category(c) != "Mn").lower()


def _text(day: date, precision: str) -> str:
    return {"year": day.strftime("%Y"), "month": day.strftime("%Y-%m"), "day": day.isoformat()}[precision]


@pytest.fixture
def org(db: Any) -> Organization:
    return organization_ensure(slug="acme", plan_slug="professional", name="Acme Hospital")


common = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@common
@given(population=people, family=st.sampled_from(["d", "DÖ", "smi", "mü", "nun", "li", "x"]))
def test_name_search_equals_the_index(org: Organization, population: list[Person], family: str) -> None:
    build(org, population)
    expected = {
        patient_resource_id(org.pk, p.patient_id)
        for p in Patient.objects.filter(organization=org)
        if _plain(p.name.split("^")[0]).startswith(_plain(family))
    }
    assert search(org, "Patient", [("family", family)]) == expected


@common
@given(
    population=people,
    day=dates,
    prefix=st.sampled_from(PREFIXES),
    precision=st.sampled_from(["day", "month", "year"]),
    gender=st.sampled_from(["male", "female", "other", "unknown"]),
)
def test_birthdate_and_gender_search_equals_the_index(
    org: Organization, population: list[Person], day: date, prefix: str, precision: str, gender: str
) -> None:
    build(org, population)
    low, high = _bounds(day, precision)
    sexes = {"male": ["M"], "female": ["F"], "other": ["O"], "unknown": [""]}[gender]
    rows = Patient.objects.filter(date_lookup("birth_date", prefix, low, high), organization=org, sex__in=sexes)
    expected = {patient_resource_id(org.pk, p.patient_id) for p in rows}
    pairs = [("birthdate", prefix + _text(day, precision)), ("gender", gender)]
    assert search(org, "Patient", pairs) == expected


@common
@given(
    population=people,
    day=dates,
    prefix=st.sampled_from(PREFIXES),
    precision=st.sampled_from(["day", "month", "year"]),
    modalities=st.lists(st.sampled_from(MODALITIES), min_size=1, max_size=2, unique=True),
)
def test_started_and_modality_search_equals_the_index(
    org: Organization, population: list[Person], day: date, prefix: str, precision: str, modalities: list[str]
) -> None:
    build(org, population)
    low, high = _bounds(day, precision)
    rows = Study.objects.filter(date_lookup("study_date", prefix, low, high), organization=org)
    expected = {s.study_uid for s in rows if set(s.modalities) & set(modalities)}
    pairs = [("started", prefix + _text(day, precision)), ("modality", ",".join(modalities))]
    assert search(org, "ImagingStudy", pairs) == expected
