"""Django's PostgreSQL SQL compilers, except that bulk inserts are ``INSERT ... VALUES``.

Django 5.2 bulk-inserts PostgreSQL rows as ``UNNEST`` of one array per column, which saves the
server planning time for very many rows; but with client-side binding (Django's default for
psycopg) psycopg writes each array literal in Python, escaping every quote and backslash of
every value with a regular expression, where one parameter per value is escaped by libpq in C.
Measured (docs/benchmarks.md, issue 12): a 250-row insert of indexed instances (their DICOM JSON,
~1.5 kB each) cost 0.24 ms of client CPU per row as UNNEST and 0.10 ms as VALUES, PostgreSQL's
own CPU 0.04 ms per row both ways; receiving a 1,000-instance body spent ~9 % of the server's
CPU quoting its upload items' array literals. VALUES is what Django before 5.2 sent.
"""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql.compiler import (
    SQLAggregateCompiler,
    SQLCompiler,
    SQLDeleteCompiler,
    SQLUpdateCompiler,
)
from django.db.backends.postgresql.compiler import SQLInsertCompiler as _UnnestInsertCompiler
from django.db.models.sql.compiler import SQLInsertCompiler as _ValuesInsertCompiler

__all__ = ["SQLAggregateCompiler", "SQLCompiler", "SQLDeleteCompiler", "SQLInsertCompiler", "SQLUpdateCompiler"]


class SQLInsertCompiler(_UnnestInsertCompiler):
    def assemble_as_sql(self, fields: Any, value_rows: Any) -> Any:
        return _ValuesInsertCompiler.assemble_as_sql(self, fields, value_rows)
