"""QIDO-RS searches (PS3.18 §10.6) on the index rows of one organization: matching as PS3.4
C.2.2.2 describes it (dicomweb/matching.py), answers as DICOM JSON (PS3.18 Annex F).

Each search's shape (its form of matching, the columns its answer returns) is compiled once
(core/compiled_search.py) and what its answer holds worked out once. Attributes a client names
in ``includefield`` that no column holds are read from one instance's stored metadata per result
(the first indexed of the study or series), never from the files.
"""

from __future__ import annotations

import datetime
import functools
import json
from dataclasses import dataclass
from typing import Any

from django.db.models import Min

from core.compiled_search import CompiledSearch
from core.links import dicomweb_path
from dicomweb.attributes import (
    ATTRIBUTES,
    INSTANCE_AVAILABILITY,
    OWN_UID,
    REQUEST_ATTRIBUTES_SEQUENCE,
    RETRIEVE_URL,
    Attribute,
    Level,
)
from dicomweb.links import bulk_data_uris_absolute
from dicomweb.matching import Scope, search_form, search_queryset
from dicomweb.qido import Query
from studies.models import Instance

# Each shape compiled once: building and compiling its QuerySet cost more than the database's
# answer (docs/benchmarks.md, "QIDO-RS fixed cost").
_searches = CompiledSearch(search_queryset)


@dataclass
class Page:
    results: list[dict[str, Any]]
    more: bool  # rows past this page exist (the Warning of PS3.18 §10.6.3.2)


def search(*, scope: Scope, query: Query, base: str) -> Page:
    """One page of matches as DICOM JSON objects; ``base`` makes RetrieveURLs absolute."""
    answer = _answer(
        _Asked(
            query.level,
            scope.study_uid is not None,
            scope.series_uid is not None,
            frozenset(query.include),
            query.include_all,
            frozenset(m.attribute.tag for m in query.matches),
        )
    )
    form, values = search_form(scope, query)
    # One more than the page: are there more?
    found = _searches.dicts((form, answer.paths), values, offset=query.offset, limit=query.limit + 1)
    more, found = len(found) > query.limit, found[: query.limit]
    extra = answer.extra
    stored = _representative_metadata(query.level, [row["id"] for row in found], base) if extra else {}
    results = []
    for row in found:
        result = {cell[0]: _element(cell, row, answer, base) for cell in answer.cells}
        if answer.nested:
            result = _nest(result)
        for tag in extra:
            element = stored.get(row["id"], {}).get(tag)
            if element is not None:
                result[tag] = element
        # The cells are in tag order: only what came after them needs sorting in.
        results.append(dict(sorted(result.items())) if answer.nested or extra else result)
    return Page(results, more)


@dataclass(frozen=True)
class _Asked:
    """What decides a search's answer's attributes (PS3.18 Table 10.6.3-3/4/5)."""

    level: Level
    by_study: bool  # the path names a study
    by_series: bool  # and a series
    include: frozenset[str]  # includefield's tag paths
    include_all: bool
    matched: frozenset[str]  # the matching keys' tags


_Cell = tuple[str, str, str | None]  # an answer's attribute: tag, VR, its row's key (None: computed)


@dataclass(frozen=True)
class _Answer:
    """What a search's answer holds, worked out once per shape."""

    cells: tuple[_Cell, ...]  # in tag order
    paths: tuple[str, ...]  # what its rows select
    uid_paths: tuple[str, ...]  # the UIDs a RetrieveURL needs
    extra: tuple[str, ...]  # includefield tags read from stored metadata
    nested: bool  # some attribute lies in the Request Attributes Sequence's item


@functools.lru_cache(maxsize=256)
def _answer(asked: _Asked) -> _Answer:
    level = asked.level
    attributes = _returned(asked)
    columns = sorted({a.lookup(level) for a in attributes if a.column is not None})
    uid_paths = tuple(_uid_paths(level))
    return _Answer(
        cells=tuple(sorted((a.tag, a.vr, a.lookup(level) if a.column is not None else None) for a in attributes)),
        paths=tuple(dict.fromkeys(("id", *columns, *uid_paths))),
        uid_paths=uid_paths,
        extra=tuple(_extra_tags(asked.include, attributes)),
        nested=any(a.tag.startswith(REQUEST_ATTRIBUTES_SEQUENCE + ".") for a in attributes),
    )


def _returned(asked: _Asked) -> list[Attribute]:
    """PS3.18 Table 10.6.3-3/4/5: the query level's attributes and, when the path does not
    name them, its study's (and series') too; plus those matched or named in includefield."""
    level = asked.level
    owners = {Level.STUDY: [Level.STUDY], Level.SERIES: [Level.SERIES], Level.INSTANCE: [Level.INSTANCE]}[level]
    if level != Level.STUDY and not asked.by_study:
        owners.append(Level.STUDY)
    if level == Level.INSTANCE and not asked.by_series:
        owners.append(Level.SERIES)
    named = asked.include | asked.matched
    chosen = []
    for attribute in ATTRIBUTES.values():
        if not attribute.visible_from(level):
            continue
        if ((attribute.default or asked.include_all) and attribute.level in owners) or attribute.tag in named:
            chosen.append(attribute)
    if OWN_UID[level] not in {a.tag for a in chosen}:
        chosen.append(ATTRIBUTES[OWN_UID[level]])
    return chosen


def _uid_paths(level: Level) -> list[str]:
    """The UIDs a RetrieveURL needs (study, series, instance as far as ``level``), from its rows."""
    return [
        ATTRIBUTES[OWN_UID[owner]].lookup(level) for owner in Level if ATTRIBUTES[OWN_UID[owner]].visible_from(level)
    ]


def _extra_tags(include: frozenset[str], attributes: list[Attribute]) -> list[str]:
    """includefield tags no column holds (top-level tags only: a nested path is one element)."""
    have = {a.tag.partition(".")[0] for a in attributes}
    return sorted({tag.partition(".")[0] for tag in include} - have)


def _representative_metadata(level: Level, ids: list[int], base: str) -> dict[int, dict[str, Any]]:
    """Each result's stored metadata: its own (instances) or its first instance's, its
    BulkDataURIs made absolute as metadata answers make them."""
    if not ids:
        return {}
    if level == Level.INSTANCE:
        pairs = {i: i for i in ids}
    else:
        owner = "series__study_id" if level == Level.STUDY else "series_id"
        firsts = Instance.objects.filter(**{f"{owner}__in": ids}).values(owner).annotate(first=Min("id"))
        pairs = {row["first"]: row[owner] for row in firsts}
    stored = Instance.objects.filter(pk__in=pairs).values_list("id", "metadata")
    return {pairs[pk]: json.loads(bulk_data_uris_absolute(text, base)) for pk, text in stored if text}


def _element(cell: _Cell, row: dict[str, Any], answer: _Answer, base: str) -> dict[str, Any]:
    tag, vr, key = cell
    if tag == RETRIEVE_URL:
        return {"vr": vr, "Value": [base + dicomweb_path(*(row[path] for path in answer.uid_paths))]}
    if tag == INSTANCE_AVAILABILITY:
        return {"vr": vr, "Value": ["ONLINE"]}
    assert key is not None  # every other attribute has its column
    value = row[key]
    values = value if isinstance(value, list) else [value]
    encoded = [_encode(vr, v) for v in values if v not in (None, "")]
    return {"vr": vr, "Value": encoded} if encoded else {"vr": vr}


def _encode(vr: str, value: Any) -> Any:
    if vr == "PN":
        groups = str(value).split("=")
        return {
            label: group
            for label, group in zip(("Alphabetic", "Ideographic", "Phonetic"), groups, strict=False)
            if group
        }
    if isinstance(value, datetime.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, datetime.time):
        return value.strftime("%H%M%S") + (f".{value.microsecond:06d}" if value.microsecond else "")
    return value


def _nest(result: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a sequence's item (``SSSSSSSS.GGGGEEEE``) inside that sequence's one item."""
    nested: dict[str, Any] = {}
    item: dict[str, Any] = {}
    for tag, element in result.items():
        if tag.startswith(REQUEST_ATTRIBUTES_SEQUENCE + "."):
            if "Value" in element:
                item[tag.partition(".")[2]] = element
        else:
            nested[tag] = element
    if any(tag.startswith(REQUEST_ATTRIBUTES_SEQUENCE + ".") for tag in result):
        nested[REQUEST_ATTRIBUTES_SEQUENCE] = {"vr": "SQ", "Value": [item]} if item else {"vr": "SQ"}
    return nested
