"""``.values()`` QuerySets compiled once per shape, for searches whose filters vary (QIDO-RS).

Building and compiling a search's QuerySet cost ~0.9 ms a request, more than the database's
answer (docs/benchmarks.md, issue 11). core/compiled_lookup.py compiles lookups whose values
reach the SQL unchanged; a search's do not always: Django turns a ``startswith`` value into a
LIKE pattern (its wildcards escaped), an ``iexact`` one into an escaped LIKE on SQLite, a date or
time into text on SQLite, an integer into psycopg's Int4 (or Int2, Int8) on PostgreSQL, and
writes LIMIT and OFFSET into the SQL as numbers.
``CompiledSearch`` builds a shape's QuerySet with stand-in values, finds where each stand-in
lands among the SQL parameters and which of those conversions Django applied (with Django's own
``prep_for_like_query``), checks that finding on a second build with other stand-ins (the same
SQL, exactly the parameters it predicts), turns LIMIT / OFFSET into parameters, and from then on
only binds values. The QuerySet stays the single source of the query. A shape it cannot compile
so (a stand-in that does not come out as a parameter, a conversion it does not know) runs its
QuerySet as before, as does an integer outside 0..2**31-1 (Django drops a lookup whose integer
overflows its column, ``IntegerFieldOverflow``, so the SQL would not be the shape's).

It leans on the SQL compiler's internals (``as_sql``, ``get_converters``, ``apply_converters``,
``values_select``): the shortcut fenced here. tests/unit/test_compiled_search.py holds it equal
to the QuerySet for every QIDO-RS shape; tests/unit/test_framework_fences.py fails when Django
leaves the release it was reviewed for.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connections
from django.db.models import QuerySet
from django.db.models.sql.compiler import SQLCompiler

Convert = Callable[[Any], Any]
_INT_RANGE = range(0, 2**31)  # every integer column's range, on every backend
_LIMIT = re.compile(r" LIMIT (\d+)(?: OFFSET (\d+))?$")
_UNSEEN, _ONCE = "unseen", "asked for once"  # a shape's place in CompiledSearch's plans, before compiling


def _as_is(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Statement:
    """A QuerySet's SQL, compiled once: run with the values put in their places."""

    using: str
    sql: str
    params: list[Any]  # constants, with None where a value goes
    slots: dict[int, tuple[Any, Convert]]  # parameter position -> (value key, Django's conversion)
    compiler: SQLCompiler
    converters: dict[int, Any]

    def rows(self, values: Any, more: Sequence[object] = ()) -> Any:
        """The rows for ``values`` (by the keys the statement was compiled with), the ORM's
        field converters applied; ``more``: parameters after the query's own (LIMIT, OFFSET)."""
        params: list[Any] = list(self.params)
        for position, (key, convert) in self.slots.items():
            params[position] = convert(values[key])  # values: a Mapping or a Sequence
        params.extend(more)
        with connections[self.using].cursor() as cursor:
            cursor.execute(self.sql, params)
            rows: Any = cursor.fetchall()
        if self.converters:
            rows = self.compiler.apply_converters(rows, self.converters)
        return rows


def statement_compile(
    queryset: QuerySet[Any],
    placeholders: Mapping[Any, object],
    columns: Callable[[SQLCompiler], list[Any]],
    conversions: Callable[[object], Sequence[Convert]] = lambda value: (_as_is,),
) -> Statement:
    """``queryset``'s statement, each placeholder's value found among its parameters as one of
    ``conversions(value)`` of it; ``columns``: the selected columns the converters are for.
    Raises ValueError when a placeholder does not reach the SQL as a parameter."""
    compiler = queryset.query.get_compiler(using=queryset.db)
    sql, params = compiler.as_sql()
    slots: dict[int, tuple[Any, Convert]] = {}
    for position, param in enumerate(params):
        for key, value in placeholders.items():
            convert = next((c for c in conversions(value) if _same(c(value), param)), None)
            if convert is not None:
                slots[position] = (key, convert)
                break
    if {key for key, _ in slots.values()} != set(placeholders):
        raise ValueError("a placeholder does not reach the SQL as a parameter")
    plain = [None if i in slots else p for i, p in enumerate(params)]
    return Statement(queryset.db, sql, plain, slots, compiler, compiler.get_converters(columns(compiler)))


def _same(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


@dataclass(frozen=True)
class _Plan:
    statement: Statement
    keys: list[str]  # the .values() names, in the SELECT's order
    offset: bool  # the SQL has an OFFSET parameter


class CompiledSearch:
    """``search.dicts(shape, values, offset=o, limit=n)`` is ``list(build(shape, values)[o : o + n])``
    for ``build`` returning a plain ``.values(...)`` QuerySet (ordered), without rebuilding it
    for a shape already seen.

    ``shape`` (hashable) must fix the QuerySet's SQL: every value ``build`` uses comes from
    ``values`` (str, int, date, time), the same types at the same places for one shape. A shape
    is compiled the second time it is asked for; the last ``size`` shapes are kept, per thread
    (a compiler belongs to its thread's connection).
    """

    def __init__(self, build: Callable[[Any, Sequence[object]], QuerySet[Any]], size: int = 256) -> None:
        self._build = build
        self._size = size
        self._local = threading.local()

    def dicts(self, shape: Hashable, values: Sequence[object], *, offset: int, limit: int) -> list[dict[str, Any]]:
        plan = self.plan(shape, values, paged=offset > 0)
        if plan is None:
            return list(self._build(shape, values)[offset : offset + limit])
        rows = plan.statement.rows(values, (limit, offset) if plan.offset else (limit,))
        return [dict(zip(plan.keys, row, strict=True)) for row in rows]

    def plan(self, shape: Hashable, values: Sequence[object], *, paged: bool) -> _Plan | None:
        """The shape's compiled plan (None: it runs its QuerySet); ``paged``: with an OFFSET.

        A shape is compiled the second time it is asked for: compiling builds its QuerySet
        twice, and a shape asked for once (a client cycling through list lengths, say) then
        costs what its QuerySet costs, no more."""
        if any(isinstance(v, int) and v not in _INT_RANGE for v in values):
            return None
        plans: OrderedDict[Hashable, _Plan | str | None] | None = getattr(self._local, "plans", None)
        if plans is None:
            plans = self._local.plans = OrderedDict()
        key = (shape, paged)
        kept = plans.get(key, _UNSEEN)
        if kept is _UNSEEN or kept is _ONCE:
            if kept is _ONCE:
                try:
                    kept = self._compile(shape, values, paged)
                except (ValueError, TypeError):
                    kept = None
            else:
                kept = _ONCE
            plans[key] = kept
            if len(plans) > self._size:
                plans.popitem(last=False)
        plans.move_to_end(key)
        return kept if isinstance(kept, _Plan) else None

    def _compile(self, shape: Hashable, values: Sequence[object], paged: bool) -> _Plan:
        found = self._sliced(shape, values, paged, 0)
        stand_ins = [_stand_in(value, i, 0) for i, value in enumerate(values)]
        query = found.query
        if not query.values_select or query.annotation_select or query.extra_select:
            raise ValueError("CompiledSearch serves plain .values() QuerySets")
        statement = statement_compile(
            found,
            dict(enumerate(stand_ins)),
            lambda c: [column[0] for column in c.select[: c.col_count]],
            _conversions(connections[found.db].ops),
        )
        statement = dataclasses.replace(statement, sql=_limit_bound(statement.sql, paged, 0))
        # The same shape with other stand-ins: the same SQL, and the parameters the recipe predicts.
        other = self._sliced(shape, values, paged, 1)
        sql, params = other.query.get_compiler(using=other.db).as_sql()
        predicted = list(statement.params)
        for position, (key, convert) in statement.slots.items():
            predicted[position] = convert(_stand_in(values[key], key, 1))
        if _limit_bound(sql, paged, 1) != statement.sql or len(params) != len(predicted):
            raise ValueError("the shape's SQL is not the same for other values")
        if not all(_same(a, b) for a, b in zip(predicted, params, strict=True)):
            raise ValueError("the shape's parameters are not what the recipe predicts")
        return _Plan(statement, list(query.values_select), paged)

    def _sliced(self, shape: Hashable, values: Sequence[object], paged: bool, round_: int) -> QuerySet[Any]:
        """The shape's QuerySet on round ``round_``'s stand-ins, sliced by stand-in numbers."""
        low, count = _window(paged, round_)
        return self._build(shape, [_stand_in(value, i, round_) for i, value in enumerate(values)])[low : low + count]


def _window(paged: bool, round_: int) -> tuple[int, int]:
    """Stand-in OFFSET (0, which Django leaves out, unless ``paged``) and LIMIT of a round."""
    return (20_000_011 + round_ if paged else 0), 10_000_019 + round_


def _limit_bound(sql: str, paged: bool, round_: int) -> str:
    """``sql`` with the round's stand-in LIMIT / OFFSET numbers as parameters, at its end."""
    low, count = _window(paged, round_)
    tail = _LIMIT.search(sql)
    if tail is None or tail.groups() != (str(count), str(low) if paged else None):
        raise ValueError("LIMIT / OFFSET are not where they were expected")
    return sql[: tail.start()] + (" LIMIT %s OFFSET %s" if paged else " LIMIT %s")


def _conversions(ops: Any) -> Callable[[object], Sequence[Convert]]:
    """What Django may make of a value on its way to a parameter: nothing; text (dates and
    times on SQLite); a LIKE pattern, escaped, with wildcards around (startswith, iexact on
    SQLite; contains and endswith for completeness); an integer typed for its column (psycopg's
    Int2 / Int4 / Int8 on PostgreSQL)."""
    like: Convert = ops.prep_for_like_query
    text = (
        _as_is,
        like,
        lambda v: f"{like(v)}%",
        lambda v: f"%{like(v)}",
        lambda v: f"%{like(v)}%",
    )
    integer, other = _integer(ops), (_as_is, str)
    return lambda value: text if isinstance(value, str) else integer if isinstance(value, int) else other


def exact_conversions(ops: Any) -> Callable[[object], Sequence[Convert]]:
    """What Django makes of a value compared exactly (core/compiled_lookup.py): itself; an
    integer typed for its column; a UUID as 32 hex digits where the database has no UUID type
    (SQLite)."""
    integer, as_is, by_uuid = _integer(ops), (_as_is,), (_as_is, _hex)
    return lambda value: integer if isinstance(value, int) else by_uuid if isinstance(value, uuid.UUID) else as_is


def _integer(ops: Any) -> tuple[Convert, ...]:
    """An integer as itself, or typed for its column (psycopg's Int2 / Int4 / Int8 on PostgreSQL)."""
    return (_as_is, *dict.fromkeys(getattr(ops, "integerfield_type_map", {}).values()))


def _hex(value: uuid.UUID) -> str:
    return value.hex


def _stand_in(value: object, i: int, round_: int) -> object:
    """A value of ``value``'s type no real request sends, distinct per position and round; its
    LIKE escape differs from itself (``%``, ``_``, ``\\``), so each conversion shows."""
    if isinstance(value, str):
        return f"\x00{round_}.{i}%_\\"
    if isinstance(value, bool):
        raise TypeError("booleans are not bound")
    if isinstance(value, int):
        return 2_000_000_000 + round_ * 50_000_000 + i
    if isinstance(value, datetime.datetime):
        raise TypeError("datetimes are not bound")
    if isinstance(value, datetime.date):
        return datetime.date.fromordinal(400_000 + round_ * 1_000_000 + i)
    if isinstance(value, datetime.time):
        micro = round_ * 43_200_000_000 + i + 1  # the round's half of the day
        return (datetime.datetime.min + datetime.timedelta(microseconds=micro)).time()
    raise TypeError(f"{type(value).__name__} values are not bound")
