"""Single-row ORM lookups compiled once: for the two queries every API request makes.

Building and compiling a QuerySet costs ~0.35 ms here and turning its row into models another
~0.2 ms, more than PostgreSQL takes to answer (docs/benchmarks.md). A ``CompiledLookup`` builds
its QuerySet once per thread with placeholder values, keeps the SQL and the ORM's own recipe for
turning a row into models (select_related included, field converters applied), and then only
substitutes the parameters. The QuerySet stays the single source of the query.

It leans on the SQL compiler's internals (klass_info, converters, get_related_populators): the
shortcut fenced here. tests/unit/test_compiled_lookup.py holds it equal to ``.first()``;
tests/unit/test_framework_fences.py fails when Django leaves the release it was reviewed for.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.db import models
from django.db.models.query import get_related_populators
from django.db.models.sql.compiler import SQLCompiler

from core.compiled_search import Statement, statement_compile

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
        return statement_compile(queryset, self._placeholders, columns)

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
