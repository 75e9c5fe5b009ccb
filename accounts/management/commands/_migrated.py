"""A clear refusal, instead of "no such table", for commands run against an unmigrated database."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


def require_migrated() -> None:
    """Raises CommandError naming the database when migrations are pending (e.g. a fresh
    PRIZMED_DATA_DIR that `make run` has not used yet)."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        name = settings.DATABASES["default"]["NAME"]
        raise CommandError(
            f"The database {name} is not set up: run `make run` (or `.venv/bin/python manage.py migrate`) "
            "with the same PRIZMED_DATA_DIR / DATABASE_URL first."
        )
