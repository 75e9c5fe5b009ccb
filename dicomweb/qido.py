"""A QIDO-RS request's query parameters, checked (PS3.18 §8.3.4, §10.6.1.2; PS3.4 C.2.2.2):
matching keys with their values, ``includefield``, ``fuzzymatching``, ``limit`` and ``offset``.
Anything else, or a value its attribute cannot match, is a 400 that names it."""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field

from django.conf import settings

from core.errors import ApiError
from core.params import optional_integer
from dicom.uid import uid_is_acceptable
from dicomweb.attributes import ATTRIBUTES, Attribute, Kind, Level, UnknownAttribute, keyword, tag_path

MAX_OFFSET = 10**9
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})", re.ASCII)
_TIME = re.compile(r"(\d{2})(\d{2})?(\d{2})?(?:\.(\d{1,6}))?", re.ASCII)


def bad_query(detail: str, parameter: str) -> ApiError:
    return ApiError(400, detail, slug="bad-query-parameter", parameter=parameter)


@dataclass(frozen=True)
class Match:
    """One matching key: the attribute and its PS3.4 C.2.2.2 form. ``values`` are alternatives
    (list matching); each is a literal, a wildcard pattern, or a (low, high) range."""

    attribute: Attribute
    values: tuple[object, ...]
    wildcard: tuple[bool, ...]


@dataclass
class Query:
    level: Level
    matches: list[Match] = field(default_factory=list)
    include: set[str] = field(default_factory=set)  # tag paths named by includefield
    include_all: bool = False
    fuzzy: bool = False
    limit: int = 0
    offset: int = 0


def query_parse(pairs: list[tuple[str, str]], *, level: Level) -> Query:
    """Check the query string's ``pairs`` for a query at ``level``; raise ApiError 400."""
    maximum = settings.DICOMWEB_QIDO_MAX_RESULTS
    query = Query(level, limit=maximum)
    seen: set[str] = set()
    for name, value in pairs:
        if name == "limit":
            query.limit = optional_integer(value, name="limit", default=maximum, low=1, high=maximum)
        elif name == "offset":
            query.offset = optional_integer(value, name="offset", default=0, high=MAX_OFFSET)
        elif name == "fuzzymatching":
            if value not in ("true", "false"):
                raise bad_query("fuzzymatching must be true or false.", name)
            query.fuzzy = value == "true"
        elif name == "includefield":
            _include(query, value)
        else:
            match = _match(name, value, level)
            if match is not None:
                if match.attribute.tag in seen:
                    raise bad_query(f"{name} is given twice; list matching is value1,value2.", name)
                seen.add(match.attribute.tag)
                query.matches.append(match)
    return query


def _include(query: Query, value: str) -> None:
    for name in (part.strip() for part in value.split(",")):
        if name == "all":
            query.include_all = True
            continue
        try:
            query.include.add(tag_path(name))
        except UnknownAttribute as exc:
            raise bad_query(f"includefield: {exc}.", "includefield") from None


def _match(name: str, value: str, level: Level) -> Match | None:
    try:
        tag = tag_path(name)
    except UnknownAttribute as exc:
        raise bad_query(f"Unknown query parameter: {exc}.", name) from None
    attribute = ATTRIBUTES.get(tag)
    if attribute is None or attribute.kind == Kind.COMPUTED or not attribute.visible_from(level):
        raise bad_query(
            f"{keyword(tag)} is not a matching attribute of a {level.value}-level query (docs/dicomweb.md).", name
        )
    if value == "":
        return None  # universal matching (PS3.4 C.2.2.2.3): every row, the attribute returned
    alternatives = _alternatives(attribute, value)
    parsed = tuple(_value(attribute, alternative, name) for alternative in alternatives)
    wildcards = tuple(attribute.kind in (Kind.TEXT, Kind.PERSON_NAME) and ("*" in a or "?" in a) for a in alternatives)
    return Match(attribute, parsed, wildcards)


def _alternatives(attribute: Attribute, value: str) -> list[str]:
    """List matching: values separated by commas (PS3.18 §8.3.4.1), or by backslashes for UIDs
    (PS3.4 C.2.2.2.2)."""
    separators = r"[,\\]" if attribute.kind == Kind.UID else ","
    return [part for part in re.split(separators, value)]


def _value(attribute: Attribute, text: str, name: str) -> object:
    if attribute.kind in (Kind.DATE, Kind.TIME):
        parse = _date if attribute.kind == Kind.DATE else _time
        if "-" not in text:
            return parse(text, name)
        low, _, high = text.partition("-")
        if not low and not high:
            raise bad_query(f"{name}: a range needs at least one end.", name)
        return (parse(low, name) if low else None, parse(high, name) if high else None)
    if attribute.kind == Kind.INTEGER:
        if not re.fullmatch(r"[+-]?\d{1,10}", text, re.ASCII):
            raise bad_query(f"{name} must be an integer.", name)
        return int(text)
    if attribute.kind == Kind.UID and not uid_is_acceptable(text):  # the one UID rule, dicom/uid.py
        raise bad_query(f"{name}: {text!r} is not a UID.", name)
    if not text or len(text) > 324:
        raise bad_query(f"{name}: each value must be 1 to 324 characters.", name)
    return text


def _date(text: str, name: str) -> datetime.date:
    match = _DATE.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        return datetime.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        raise bad_query(f"{name}: {text!r} is not a date (YYYYMMDD, or a range YYYYMMDD-YYYYMMDD).", name) from None


def _time(text: str, name: str) -> datetime.time:
    match = _TIME.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        hour, minute, second, fraction = match.groups()
        return datetime.time(int(hour), int(minute or 0), int(second or 0), int((fraction or "").ljust(6, "0")))
    except ValueError:
        raise bad_query(f"{name}: {text!r} is not a time (HHMMSS[.FFFFFF], or a range).", name) from None
