"""The database backend settings name for PostgreSQL (ENGINE "core.postgresql"): Django's own,
whose operations take their SQL compilers from core/postgresql/compiler.py."""

from __future__ import annotations

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    compiler_module = "core.postgresql.compiler"


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
