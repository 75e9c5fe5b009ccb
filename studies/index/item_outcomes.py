"""The outcome of a batch's upload items in one raw ``UPDATE ... FROM (VALUES ...)``.

Django's ``bulk_update`` builds a CASE per row and field, which cost more than the rest of an
indexing batch together. The statement is written by hand for SQLite and PostgreSQL (both take
``UPDATE ... FROM`` with a VALUES CTE): the shortcut fenced here. tests/unit/test_item_outcomes.py
holds it equal to ``bulk_update`` on both databases.
"""

from __future__ import annotations

import json

from django.db import connection

from studies.models import UploadItem

OUTCOME_FIELDS = [
    "state",
    "reason",
    "reason_code",
    "sop_instance_uid",
    "study_instance_uid",
    "series_instance_uid",
    "replaced",
    "warnings",
]


def item_outcomes_write(items: list[UploadItem]) -> None:
    """Write each item's outcome (OUTCOME_FIELDS: state, reason, UIDs, replaced, warnings) in one
    statement; what ``UploadItem.objects.bulk_update(items, OUTCOME_FIELDS)`` writes."""
    if not items:
        return
    quote = connection.ops.quote_name
    table, columns = quote(UploadItem._meta.db_table), OUTCOME_FIELDS
    # A VALUES string is text to PostgreSQL: the JSON column needs it cast (SQLite keeps text).
    json_value = "CAST(%s AS JSONB)" if connection.vendor == "postgresql" else "%s"
    row = "(CAST(%s AS BIGINT), " + ", ".join(json_value if c == "warnings" else "%s" for c in columns) + ")"
    rows = ", ".join([row] * len(items))
    assignments = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns)
    sql = (
        f"WITH v(id, {', '.join(quote(c) for c in columns)}) AS (VALUES {rows}) "
        f"UPDATE {table} SET {assignments} FROM v WHERE {table}.{quote('id')} = v.id"
    )
    params = [value for item in items for value in (item.pk, *(_param(item, c) for c in columns))]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _param(item: UploadItem, column: str) -> str | int | bool | None:
    value = getattr(item, column)
    return json.dumps(value) if column == "warnings" else value
