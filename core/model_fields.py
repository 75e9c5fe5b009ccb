"""Model fields whose SQL differs from Django's default for a measured reason."""

from __future__ import annotations

from typing import Any

from django.db import models


class ValuesInsertTextField(models.TextField[str, str]):
    """A text column that keeps its model's bulk inserts in ``INSERT ... VALUES``.

    Django 5.2 bulk-inserts PostgreSQL rows as ``UNNEST`` of one array per column, which saves
    the server planning time; but with client-side binding (Django's default for psycopg)
    psycopg writes each array literal in Python, escaping every quote of every value with a
    regular expression. For long values full of quotes (an instance's DICOM JSON, ~1.5 kB) a
    250-row insert of indexed instances cost 0.24 ms of client CPU per row that way against
    0.10 ms with one parameter per value, which libpq escapes in C; PostgreSQL's own CPU was
    0.04 ms per row both ways (docs/benchmarks.md, issue 12). A field with ``get_placeholder``
    makes Django keep VALUES for its model.

    Per column, not for every model: with many short values per row UNNEST is the cheaper one
    (1,000 upload items, measured when they were bulk-inserted through the ORM: 0.040 against
    0.141 ms of client CPU per row, PostgreSQL 0.011 against 0.034), since a VALUES list of
    thousands of placeholders costs more to build and to split.
    """

    def get_placeholder(self, value: Any, compiler: Any, connection: Any) -> str:
        return "%s"
