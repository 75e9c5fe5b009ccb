"""ORM lookups compiled once: the queries every API request and every indexing batch makes.

Building and compiling a QuerySet costs ~0.35 ms here and turning its row into models another
~0.2 ms, more than PostgreSQL takes to answer (docs/benchmarks.md). A ``CompiledLookup`` builds
its QuerySet once per thread with placeholder values, keeps the SQL and the ORM's own recipe for
turning a row into models (select_related included, field converters applied), and then only
substitutes the parameters. The QuerySet stays the single source of the query. A
``CompiledListLookup`` does the same for a QuerySet filtering on lists of keys (``__in``), once per
shape (the lists' lengths): an indexing batch's reads, whose lists are of one key for a
single-instance upload.

It leans on the SQL compiler's internals (klass_info, converters, get_related_populators): the
shortcut fenced here. tests/unit/test_compiled_lookup.py holds it equal to ``.first()``;
tests/unit/test_framework_fences.py fails when Django leaves the release it was reviewed for.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import connections, models
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

from core.compiled_search import Statement, exact_conversions, statement_compile

M = TypeVar("M", bound=models.Model)


@dataclass(frozen=True)
class _Plan:
    statement: Statement
    model: type[models.Model]
    fields: slice
    init_list: list[str]
    populators: list[Any]


@dataclass(frozen=True)
class _ValuesPlan:
    statement: Statement
    keys: list[str]  # the .values() names, in the SELECT's order


class CompiledLookup(Generic[M]):
    """``lookup.first(**values)`` is ``build(**values).first()`` for a lookup by a unique key,
    and ``lookup.all(**values)`` is ``list(build(**values))``, without rebuilding the query;
    for a ``.values(...)`` QuerySet, ``lookup.dicts(**values)`` is ``list(build(**values))``.

    ``placeholders`` gives each named value a stand-in of the same type that no real call uses
    as a constant in ``build``; it only serves to find where each value lands among the SQL
    parameters.
    """

    def __init__(self, build: Callable[..., models.QuerySet[M]], **placeholders: object) -> None:
        self._build = build
        self._placeholders = placeholders
        self._local = threading.local()  # a compiler belongs to its thread's connection

    def _compile(self, queryset: models.QuerySet[Any], columns: Callable[[SQLCompiler], list[Any]]) -> Statement:
        """The queryset's statement; ``columns``: the selected columns the converters are for."""
        conversions = exact_conversions(connections[queryset.db].ops)
        return statement_compile(queryset, self._placeholders, columns, conversions)

    def _plan(self, *, one: bool) -> _Plan:
        slot = "one" if one else "all"
        plan: _Plan | None = getattr(self._local, slot, None)
        if plan is None:
            queryset = self._build(**self._placeholders)
            queryset = queryset[:1] if one else queryset
            statement = self._compile(queryset, lambda compiler: [column[0] for column in compiler.select])
            select, info = statement.compiler.select, statement.compiler.klass_info
            if info is None or statement.compiler.annotation_col_map:
                raise ValueError("only plain model lookups (with select_related) are supported")
            fields = slice(info["select_fields"][0], info["select_fields"][-1] + 1)
            plan = _Plan(
                statement=statement,
                model=info["model"],
                fields=fields,
                init_list=[column[0].target.attname for column in select[fields]],
                # The stubs describe Django 6's signature; 5.2 takes these three.
                populators=get_related_populators(info, select, queryset.db),  # type: ignore[call-arg]
            )
            setattr(self._local, slot, plan)
        return plan

    def first(self, **values: object) -> M | None:
        found = self._run(self._plan(one=True), values)
        return found[0] if found else None

    def all(self, **values: object) -> list[M]:
        """Every row, in the QuerySet's order."""
        return self._run(self._plan(one=False), values)

    def dicts(self, **values: object) -> list[dict[str, Any]]:
        """Every row of a ``.values(...)`` QuerySet, as the dicts it yields, in its order."""
        plan: _ValuesPlan | None = getattr(self._local, "dicts", None)
        if plan is None:
            queryset = self._build(**self._placeholders)
            query = queryset.query
            if not query.values_select or query.annotation_select or query.extra_select:
                raise ValueError("dicts() serves plain .values() lookups")
            statement = self._compile(queryset, lambda c: [column[0] for column in c.select[: c.col_count]])
            plan = _ValuesPlan(statement=statement, keys=list(query.values_select))
            self._local.dicts = plan
        rows = plan.statement.rows(values)
        return [dict(zip(plan.keys, row, strict=True)) for row in rows]

    def _run(self, plan: _Plan, values: dict[str, object]) -> list[M]:
        rows = plan.statement.rows(values)
        found = []
        for row in rows:
            obj = plan.model.from_db(plan.statement.using, plan.init_list, row[plan.fields])
            for populator in plan.populators:
                populator.populate(row, obj)
            found.append(obj)
        return found  # type: ignore[return-value]  # plan.model is the QuerySet's model, M


def _key_stand_in(kind: type, n: int, i: int) -> object:
    """The i-th stand-in key of list n: of its type, distinct from every other, no real key."""
    if kind is str:
        return f"\x00key{n}.{i}"
    if kind is int:
        return 1_900_000_000 + n * 1_000 + i  # within every integer column's range: Django drops a lookup outside it
    if kind is uuid.UUID:
        return uuid.UUID(int=(0xF00D << 64) + (n << 32) + i)
    raise TypeError(f"{kind.__name__} keys are not bound")


class CompiledListLookup(Generic[M]):
    """``lookup.all(lists, **values)`` is ``list(build(*lists, **values))`` and ``lookup.dicts(...)``
    its ``.values()`` rows, for a QuerySet that filters on lists of keys (``__in``): compiled once
    per tuple of list lengths, each list's keys bound one by one; with more than ``longest`` keys
    in all, or none, the QuerySet runs as built. ``kinds``: the type of each list's keys (str, int
    or UUID), ``placeholders`` as for CompiledLookup.

    Django's ``__in`` drops repeated keys; a compiled shape binds every key given, repeats
    included, which selects the same rows."""

    def __init__(
        self,
        build: Callable[..., models.QuerySet[M, Any]],
        kinds: Sequence[type],
        longest: int = 16,
        **placeholders: object,
    ) -> None:
        self._build: Callable[..., models.QuerySet[M, Any]] = build
        self._kinds, self._longest = tuple(kinds), longest
        self._placeholders = placeholders
        self._lookups: dict[tuple[int, ...], CompiledLookup[M]] = {}
        self._guard = threading.Lock()

    def _lookup(self, shape: tuple[int, ...]) -> CompiledLookup[M]:
        lookup = self._lookups.get(shape)
        if lookup is None:
            names = [[f"\x00{n}.{i}" for i in range(length)] for n, length in enumerate(shape)]
            stand_ins = {
                name: _key_stand_in(kind, n, i)
                for n, (kind, row) in enumerate(zip(self._kinds, names, strict=True))
                for i, name in enumerate(row)
            }

            def build(**values: object) -> models.QuerySet[M]:
                lists = [[values[name] for name in row] for row in names]
                return self._build(*lists, **{k: values[k] for k in self._placeholders})

            with self._guard:  # CompiledLookup keeps its plans per thread; the shapes are shared
                lookup = self._lookups.setdefault(shape, CompiledLookup(build, **self._placeholders, **stand_ins))
        return lookup

    def _bound(self, lists: Sequence[Sequence[object]], values: dict[str, object]) -> dict[str, object]:
        bound = dict(values)
        for n, keys in enumerate(lists):
            bound.update({f"\x00{n}.{i}": key for i, key in enumerate(keys)})
        return bound

    def _compiled(self, lists: Sequence[Sequence[object]]) -> bool:
        total = sum(len(keys) for keys in lists)
        return 0 < total <= self._longest

    def all(self, lists: Sequence[Sequence[object]], **values: object) -> list[M]:
        """Every row, in the QuerySet's order."""
        if not self._compiled(lists):
            return list(self._build(*lists, **values))
        shape = tuple(len(keys) for keys in lists)
        return self._lookup(shape).all(**self._bound(lists, values))

    def dicts(self, lists: Sequence[Sequence[object]], **values: object) -> list[dict[str, Any]]:
        """Every row of a ``.values(...)`` QuerySet, as the dicts it yields, in its order."""
        if not self._compiled(lists):
            return list(self._build(*lists, **values))  # type: ignore[arg-type]  # .values() rows
        shape = tuple(len(keys) for keys in lists)
        return self._lookup(shape).dicts(**self._bound(lists, values))
