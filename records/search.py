"""The FHIR search index of the current resources (FHIR R4 §3.1.1.4 Search, "Search parameter types").

``SEARCH_PARAMS`` declares, once, every search parameter PrizMed supports per resource type: its
name, type, the FHIRPath expression of the standard SearchParameter it implements, and how its
values are read from a resource. The same table feeds the index (``search_values_replace``, in the
transaction that writes the resource), the FHIR REST API's query parser and its
CapabilityStatement (fhir_rest/capabilities.py), so what is declared, indexed and answered cannot
drift apart.

Matching follows FHIR R4 §3.1.1.5: tokens match ``[system|]code`` (case-sensitive, as
identifiers are); strings match case- and accent-insensitively from the start of any name part;
dates are half-open UTC ranges [low, high) of their precision and compared by prefix
(``eq ne lt gt le ge sa eb``); references match ``Type/id``.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from core.compiled_lookup import CompiledListLookup
from records.models import EventKind, RecordEvent, RecordResource, RecordSearchValue

# Characters of a stored string or token value: an identifier as long as the index keeps a
# Patient ID (dicom.header.MAX_VALUE_CHARS), whole; a longer system URI is cut.
MAX_VALUE = 512
MAX_SYSTEM = 255


class ParamType(enum.StrEnum):
    """FHIR R4 search parameter types (§3.1.1.4) PrizMed implements."""

    TOKEN = "token"
    STRING = "string"
    DATE = "date"
    REFERENCE = "reference"


@dataclass(frozen=True)
class Value:
    """One indexed value: token (system, value), string or reference (value), date (low, high)."""

    value: str = ""
    system: str = ""
    low: datetime | None = None
    high: datetime | None = None


Extractor = Callable[[dict[str, Any]], Iterable[Value]]


@dataclass(frozen=True)
class SearchParam:
    resource: str  # FHIR resource type
    name: str
    type: ParamType
    expression: str  # FHIRPath of the standard SearchParameter (documentation, CapabilityStatement)
    extract: Extractor | None  # None: a column of RecordResource (_lastUpdated)
    definition: str = field(default="")  # canonical URL of the standard SearchParameter

    @property
    def documentation(self) -> str:
        return f"{self.type.value} search on {self.expression}"


# --- values -----------------------------------------------------------------------------------
_DATE = re.compile(
    r"(?P<y>[0-9]{4})(?:-(?P<m>[0-9]{2})(?:-(?P<d>[0-9]{2})"
    r"(?:T(?P<H>[0-9]{2}):(?P<M>[0-9]{2})(?::(?P<S>[0-9]{2})(?:\.(?P<f>[0-9]{1,9}))?)?"
    r"(?P<z>Z|[+-][0-9]{2}:[0-9]{2})?)?)?)?"
)


def date_range(text: str) -> tuple[datetime, datetime] | None:
    """The half-open UTC range [low, high) a FHIR date, dateTime or instant covers at its
    precision (``2024`` is the whole year); None when ``text`` is not one. A time without a zone
    is read as UTC (the server's zone, FHIR R4 §2.24.0.5)."""
    match = _DATE.fullmatch(text)
    if match is None:
        return None
    g = match.groupdict()
    try:
        year, month, day = int(g["y"]), int(g["m"] or 1), int(g["d"] or 1)
        low = datetime(year, month, day, int(g["H"] or 0), int(g["M"] or 0), int(g["S"] or 0), tzinfo=UTC)
    except ValueError:
        return None
    if g["z"] and g["z"] != "Z":
        sign = 1 if g["z"][0] == "+" else -1
        hours, minutes = int(g["z"][1:3]), int(g["z"][4:6])
        low -= sign * timedelta(hours=hours, minutes=minutes)
    if g["f"]:
        low += timedelta(microseconds=int(g["f"][:6].ljust(6, "0")))
        return low, low + timedelta(microseconds=1)
    if g["S"]:
        return low, low + timedelta(seconds=1)
    if g["M"]:
        return low, low + timedelta(minutes=1)
    if g["d"]:
        return low, low + timedelta(days=1)
    if g["m"]:
        return low, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    return low, datetime(year + 1, 1, 1, tzinfo=UTC)


def fold(text: str) -> str:
    """A string as string search compares it: accents dropped, case folded (FHIR R4 §3.1.1.4.7)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()[:MAX_VALUE]


def _tokens(items: Iterable[dict[str, Any]], code: str = "value") -> Iterable[Value]:
    for item in items:
        if item.get(code):
            yield Value(value=str(item[code])[:MAX_VALUE], system=str(item.get("system", ""))[:MAX_SYSTEM])


def _strings(texts: Iterable[str]) -> Iterable[Value]:
    return (Value(value=fold(text)) for text in {t for t in texts if t})


def _date(text: str | None) -> Iterable[Value]:
    span = date_range(text) if text else None
    return [Value(low=span[0], high=span[1])] if span else []


def _names(resource: dict[str, Any], parts: Sequence[str]) -> Iterable[str]:
    for name in resource.get("name", []):
        for part in parts:
            value = name.get(part)
            yield from value if isinstance(value, list) else [value] if value else []


def _id(resource: dict[str, Any]) -> Iterable[Value]:
    return [Value(value=str(resource["id"]))]


def _subject(resource: dict[str, Any]) -> Iterable[Value]:
    reference = resource.get("subject", {}).get("reference")
    return [Value(value=reference)] if reference else []


def _code(system: str, element: str) -> Extractor:
    return lambda resource: [Value(value=resource[element], system=system)] if resource.get(element) else []


_SPEC = "http://hl7.org/fhir/SearchParameter/"
SEARCH_PARAMS: dict[str, dict[str, SearchParam]] = {
    "Patient": {
        p.name: p
        for p in (
            SearchParam("Patient", "_id", ParamType.TOKEN, "Patient.id", _id, _SPEC + "Resource-id"),
            SearchParam("Patient", "_lastUpdated", ParamType.DATE, "Patient.meta.lastUpdated", None,
                        _SPEC + "Resource-lastUpdated"),
            SearchParam("Patient", "identifier", ParamType.TOKEN, "Patient.identifier",
                        lambda r: _tokens(r.get("identifier", [])), _SPEC + "Patient-identifier"),
            SearchParam("Patient", "name", ParamType.STRING, "Patient.name",
                        lambda r: _strings(_names(r, ("family", "given", "prefix", "suffix", "text"))),
                        _SPEC + "Patient-name"),
            SearchParam("Patient", "family", ParamType.STRING, "Patient.name.family",
                        lambda r: _strings(_names(r, ("family",))), _SPEC + "individual-family"),
            SearchParam("Patient", "given", ParamType.STRING, "Patient.name.given",
                        lambda r: _strings(_names(r, ("given",))), _SPEC + "individual-given"),
            SearchParam("Patient", "birthdate", ParamType.DATE, "Patient.birthDate",
                        lambda r: _date(r.get("birthDate")), _SPEC + "individual-birthdate"),
            SearchParam("Patient", "gender", ParamType.TOKEN, "Patient.gender",
                        _code("http://hl7.org/fhir/administrative-gender", "gender"), _SPEC + "individual-gender"),
        )
    },
    "ImagingStudy": {
        p.name: p
        for p in (
            SearchParam("ImagingStudy", "_id", ParamType.TOKEN, "ImagingStudy.id", _id, _SPEC + "Resource-id"),
            SearchParam("ImagingStudy", "_lastUpdated", ParamType.DATE, "ImagingStudy.meta.lastUpdated", None,
                        _SPEC + "Resource-lastUpdated"),
            SearchParam("ImagingStudy", "identifier", ParamType.TOKEN, "ImagingStudy.identifier",
                        lambda r: _tokens(r.get("identifier", [])), _SPEC + "clinical-identifier"),
            SearchParam("ImagingStudy", "patient", ParamType.REFERENCE,
                        "ImagingStudy.subject.where(resolve() is Patient)", _subject, _SPEC + "clinical-patient"),
            SearchParam("ImagingStudy", "subject", ParamType.REFERENCE, "ImagingStudy.subject", _subject,
                        _SPEC + "ImagingStudy-subject"),
            SearchParam("ImagingStudy", "started", ParamType.DATE, "ImagingStudy.started",
                        lambda r: _date(r.get("started")), _SPEC + "ImagingStudy-started"),
            SearchParam("ImagingStudy", "modality", ParamType.TOKEN, "ImagingStudy.series.modality",
                        lambda r: _tokens(r.get("modality", []), code="code"), _SPEC + "ImagingStudy-modality"),
            SearchParam("ImagingStudy", "status", ParamType.TOKEN, "ImagingStudy.status",
                        _code("http://hl7.org/fhir/imagingstudy-status", "status"), _SPEC + "ImagingStudy-status"),
        )
    },
}  # fmt: skip


def search_values(kind: str, resource: dict[str, Any]) -> list[tuple[str, Value]]:
    """Every (parameter name, value) the index keeps of ``resource``."""
    found: list[tuple[str, Value]] = []
    for param in SEARCH_PARAMS.get(kind, {}).values():
        if param.extract is not None:
            found.extend((param.name, value) for value in param.extract(resource))
    return found


def search_values_replace(*, rows: list[RecordResource]) -> None:
    """Re-index these current resources, just upserted (their ids set by the upsert's RETURNING,
    which Django does on PostgreSQL and SQLite ≥ 3.35), inside the transaction that wrote them:
    the values they had are read (one query), and only those that changed are deleted and
    inserted (a statement each, none when nothing changed: a study that gained an instance keeps
    every search value). Raises ValueError for a row without id."""
    if not rows:
        return
    if any(row.pk is None for row in rows):
        raise ValueError("search values are replaced for saved resources only")
    wanted: dict[tuple[Any, ...], list[RecordSearchValue]] = {}
    for row in rows:
        for name, value in search_values(row.kind, row.resource):
            new = RecordSearchValue(organization_id=row.organization_id, resource=row, kind=row.kind, param=name,
                                    system=value.system, value=value.value, low=value.low, high=value.high)  # fmt: skip
            wanted.setdefault(_search_key(new), []).append(new)
    stale = []
    for old in _values_of.all([[row.pk for row in rows]]):
        kept = wanted.get(_search_key(old))
        if kept:
            kept.pop()
        else:
            stale.append(old.pk)
    if stale:
        RecordSearchValue.objects.filter(pk__in=stale).delete()
    fresh = [value for values in wanted.values() for value in values]
    if fresh:
        RecordSearchValue.objects.bulk_create(fresh)


_values_of: CompiledListLookup[RecordSearchValue] = CompiledListLookup(
    lambda ids: RecordSearchValue.objects.filter(resource_id__in=ids), kinds=[int]
)


def _search_key(row: RecordSearchValue) -> tuple[Any, ...]:
    """What makes two rows the same value of the same resource."""
    return (row.resource_id, row.kind, row.param, row.system, row.value, row.low, row.high)


# --- queries ----------------------------------------------------------------------------------
DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb")


@dataclass(frozen=True)
class Match:
    """One alternative of a criterion: ``value`` (folded for strings), ``system`` (tokens: None
    matches any system, "" no system), ``prefix`` and [low, high) (dates)."""

    value: str | None = None
    system: str | None = None
    prefix: str = "eq"
    low: datetime | None = None
    high: datetime | None = None


@dataclass(frozen=True)
class Criterion:
    """One search parameter of a query: a resource matches when any of ``matches`` does; the
    criteria of one query must all match (FHIR R4 §3.1.1.5.5, "," is OR, repeating is AND)."""

    param: SearchParam
    matches: tuple[Match, ...]


def date_q(m: Match, low: str, high: str, *, point: bool) -> Q:
    """Target range [low, high) against the match's [m.low, m.high) by prefix (FHIR R4 §3.1.1.4.2).
    A point (``point``: the instant ``low`` alone) ends where it starts."""
    ends_before = {f"{high}__lte" if not point else f"{low}__lt": m.low}  # eb: target ends before the range
    starts_after = {f"{low}__gte": m.high}  # sa
    inside = Q(**{f"{low}__gte": m.low}) & Q(**({f"{high}__lte": m.high} if not point else {f"{low}__lt": m.high}))
    conditions = {
        "eq": inside,
        "ne": ~inside,
        "lt": Q(**{f"{low}__lt": m.low}),
        "le": Q(**{f"{low}__lt": m.high}),
        "gt": Q(**({f"{high}__gt": m.high} if not point else {f"{low}__gte": m.high})),
        "ge": Q(**({f"{high}__gt": m.low} if not point else {f"{low}__gte": m.low})),
        "sa": Q(**starts_after),
        "eb": Q(**ends_before),
    }
    return conditions[m.prefix]


def _match_q(param: SearchParam, m: Match) -> Q:
    if param.type == ParamType.DATE:
        return date_q(m, "low", "high", point=False)
    if param.type == ParamType.STRING:
        return Q(value__startswith=m.value)
    q = Q(value=m.value) if m.value is not None else Q()
    return q & Q(system=m.system) if m.system is not None else q


def _criterion_q(criterion: Criterion, organization_id: int, kind: str) -> Q:
    param = criterion.param
    if param.extract is None:  # _lastUpdated: RecordResource.updated, an instant
        return _any(date_q(m, "updated", "updated", point=True) for m in criterion.matches)
    # The organization and kind repeat the outer query's so the (organization, kind, param, value)
    # index leads the plan: the few matching values first, then their resources.
    values = RecordSearchValue.objects.filter(
        _any(_match_q(param, m) for m in criterion.matches),
        organization_id=organization_id,
        kind=kind,
        param=param.name,
    )
    return Q(pk__in=values.values("resource_id"))


def _any(qs: Iterable[Q]) -> Q:
    result = Q(pk__in=[])
    for q in qs:
        result |= q
    return result


@dataclass(frozen=True)
class Found:
    """A current resource: its row id (the paging cursor), version (the event that wrote it),
    when, and its JSON text."""

    id: int
    seq: int
    updated: datetime
    body: str


def _matching(*, organization_id: int, kind: str, criteria: Sequence[Criterion]) -> QuerySet[RecordResource]:
    rows = RecordResource.objects.filter(organization_id=organization_id, kind=kind)
    for criterion in criteria:
        rows = rows.filter(_criterion_q(criterion, organization_id, kind))
    return rows


def resources_search(
    *, organization_id: int, kind: str, criteria: Sequence[Criterion], after_id: int, limit: int
) -> list[Found]:
    """The matching current resources of one type, in row id order after the cursor ``after_id``
    (stable: a resource keeps its row when it changes)."""
    rows = _matching(organization_id=organization_id, kind=kind, criteria=criteria).filter(id__gt=after_id)
    found = rows.order_by("id").annotate(body=Cast("resource", TextField()))
    return [Found(*row) for row in found.values_list("id", "seq", "updated", "body")[:limit]]


def resources_search_count(*, organization_id: int, kind: str, criteria: Sequence[Criterion]) -> int:
    return _matching(organization_id=organization_id, kind=kind, criteria=criteria).count()


def resource_id_criterion(kind: str, ids: Iterable[str]) -> Criterion:
    """The criterion ``_id=<id>,<id>...`` of ``kind``."""
    return Criterion(SEARCH_PARAMS[kind]["_id"], tuple(Match(value=i) for i in ids))


def resource_read(*, organization_id: int, kind: str, resource_id: str) -> Found | None:
    found = resources_search(
        organization_id=organization_id,
        kind=kind,
        criteria=[resource_id_criterion(kind, [resource_id])],
        after_id=0,
        limit=1,
    )
    return found[0] if found else None


def study_deleted(*, organization_id: int, study_uid: str) -> bool:
    """Whether the study's last retained event is its deletion (the FHIR read answers 410 Gone)."""
    last = (
        RecordEvent.objects.filter(organization_id=organization_id, study_uid=study_uid)
        .exclude(kind=EventKind.PATIENT)
        .order_by("-seq")
        .values_list("kind", flat=True)
        .first()
    )
    return last == EventKind.DELETED
