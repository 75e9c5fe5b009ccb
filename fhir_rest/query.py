"""A FHIR search query parsed from its (name, value) pairs (FHIR R4 §3.1.1.4-5), against the
declarations of the resource type (capabilities.py). Strict: a parameter, modifier, prefix,
include or value PrizMed does not implement is a 400 OperationOutcome naming it, never silently
ignored (the behaviour of ``Prefer: handling=strict``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from core.errors import ApiError
from core.params import integer
from fhir_rest.capabilities import (
    IGNORED_PARAMS,
    RESULT_PARAMS,
    SUMMARY_VALUES,
    TOTAL_VALUES,
    ResourceType,
)
from fhir_rest.outcome import fhir_error
from records.search import DATE_PREFIXES, Criterion, Match, ParamType, SearchParam, date_range, fold

DEFAULT_COUNT = 50
MAX_COUNT = 500  # a larger _count is lowered to this (FHIR R4 §3.1.1.5.7: the server may)
MAX_CURSOR = 2**63 - 1
_ELEMENT = re.compile(r"[a-z][A-Za-z0-9]{0,63}")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 id


@dataclass(frozen=True)
class SearchQuery:
    criteria: tuple[Criterion, ...]
    count: int
    cursor: int
    includes: tuple[str, ...]
    rev_includes: tuple[str, ...]
    summary_count: bool  # _summary=count: the total alone
    elements: tuple[str, ...]  # _elements: top-level elements to keep (none: all)
    total: bool  # whether to count the matches (_total=none: no)


def invalid(detail: str, parameter: str) -> ApiError:
    return fhir_error(400, detail, "invalid", parameter=parameter)


def split_values(raw: str) -> list[str]:
    """The comma-separated alternatives of a value, ``\\,`` being a literal comma (§3.1.1.5.6)."""
    return [part.replace("\\,", ",") for part in re.split(r"(?<!\\),", raw)]


def _token(value: str) -> Match:
    """``[system]|[code]`` or ``code`` (§3.1.1.4.10); ``\\|`` is a literal bar."""
    parts = [part.replace("\\|", "|") for part in re.split(r"(?<!\\)\|", value, maxsplit=1)]
    if len(parts) == 1:
        return Match(value=parts[0])
    return Match(value=parts[1] or None, system=parts[0])


def _date(value: str, name: str) -> Match:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    text = value[2:] if value[:2] in DATE_PREFIXES else value
    span = date_range(text)
    if span is None:
        raise invalid(f"{name}: {value!r} is not a FHIR date or dateTime (with an optional prefix eq, lt, ...).", name)
    return Match(prefix=prefix, low=span[0], high=span[1])


def _reference(value: str, name: str) -> Match:
    parts = value.rstrip("/").split("/")
    if len(parts) >= 2:
        kind, ident = parts[-2], parts[-1]
    else:
        kind, ident = "Patient", parts[0]  # ImagingStudy.subject is a Patient here
    if kind != "Patient" or not _ID.fullmatch(ident):
        raise invalid(f"{name}: {value!r} is not a Patient reference (Patient/<id> or <id>).", name)
    return Match(value=f"Patient/{ident}")


def value_parse(param: SearchParam, raw: str, name: str) -> Match:
    """One alternative of ``param``'s value as a records.search Match; 400 if malformed."""
    if raw == "":
        raise invalid(f"{name} has an empty value.", name)
    if param.type == ParamType.DATE:
        return _date(raw, name)
    if param.type == ParamType.REFERENCE:
        return _reference(raw, name)
    if param.type == ParamType.STRING:
        return Match(value=fold(raw))
    return _token(raw)


def _criterion(resource: ResourceType, name: str, raw: str) -> Criterion:
    base, _, modifier = name.partition(":")
    param = resource.search_params.get(base)
    if param is None:
        known = ", ".join([*resource.search_params, *RESULT_PARAMS])
        raise invalid(f"Unknown search parameter {base!r} for {resource.name}; known: {known}.", name)
    if modifier and not (param.type == ParamType.REFERENCE and modifier == "Patient"):
        raise fhir_error(400, f"The modifier :{modifier} of {base} is not supported.", "not-supported", parameter=name)
    return Criterion(param, tuple(value_parse(param, value, name) for value in split_values(raw)))


def _one(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in pairs if key == name]
    if len(values) > 1:
        raise invalid(f"{name} is given more than once.", name)
    return values[0] if values else None


def count_parse(pairs: Sequence[tuple[str, str]]) -> int:
    raw = _one(pairs, "_count")
    return DEFAULT_COUNT if raw is None else min(integer(raw, name="_count", high=MAX_CURSOR), MAX_COUNT)


def cursor_parse(pairs: Sequence[tuple[str, str]]) -> int:
    raw = _one(pairs, "_cursor")
    return 0 if raw is None else integer(raw, name="_cursor", high=MAX_CURSOR)


def _includes(pairs: Sequence[tuple[str, str]], name: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for key, value in pairs:
        if key == name:
            if value not in allowed:
                choices = ", ".join(allowed) or "none"
                raise fhir_error(400, f"{name}={value} is not supported here (supported: {choices}).",
                                 "not-supported", parameter=name)  # fmt: skip
            found.append(value)
    return tuple(found)


def _elements(raw: str | None) -> tuple[str, ...]:
    if raw is None:
        return ()
    names = tuple(name.strip() for name in raw.split(","))
    bad = [name for name in names if not _ELEMENT.fullmatch(name)]
    if bad:
        raise invalid(f"_elements names top-level elements (e.g. identifier,name); not {bad[0]!r}.", "_elements")
    return names


def search_query_parse(resource: ResourceType, pairs: Sequence[tuple[str, str]]) -> SearchQuery:
    """The search of ``resource`` that ``pairs`` ask for; raises ApiError 400 (OperationOutcome)."""
    criteria = tuple(
        _criterion(resource, name, value)
        for name, value in pairs
        if name not in RESULT_PARAMS and name not in IGNORED_PARAMS
    )
    summary = _one(pairs, "_summary")
    if summary is not None and summary not in SUMMARY_VALUES:
        raise fhir_error(400, f"_summary={summary} is not supported (supported: count, false).", "not-supported",
                         parameter="_summary")  # fmt: skip
    total = _one(pairs, "_total")
    if total is not None and total not in TOTAL_VALUES:
        raise invalid(f"_total must be one of {', '.join(TOTAL_VALUES)}.", "_total")
    return SearchQuery(
        criteria=criteria,
        count=count_parse(pairs),
        cursor=cursor_parse(pairs),
        includes=_includes(pairs, "_include", resource.includes),
        rev_includes=_includes(pairs, "_revinclude", resource.rev_includes),
        summary_count=summary == "count",
        elements=_elements(_one(pairs, "_elements")),
        total=total != "none",
    )


def resource_id_valid(resource_id: str) -> bool:
    return _ID.fullmatch(resource_id) is not None
