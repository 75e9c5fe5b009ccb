"""`manage.py db_app_role <role>`: the PostgreSQL role the running app connects as (docs/audit.md).

Run as the database owner (the role migrations run as), after every `migrate`. The role may read
and write every table, but the audit log only SELECT and INSERT: it cannot UPDATE, DELETE or
TRUNCATE it, and, not owning it, cannot ALTER it or DISABLE its triggers. Tables later
migrations create get the same grants (default privileges). Idempotent.
"""

from __future__ import annotations

import os
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction

from accounts.models import AuditEntry

_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SEQUENCE_PRIVILEGES = "USAGE, SELECT, UPDATE"
# What the app role must not do to the audit log; INSERT and SELECT stay.
AUDIT_REVOKED = "UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER"


class Command(BaseCommand):
    help = "Create (if needed) and grant the app's PostgreSQL role: all data, the audit log append-only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the role the app's DATABASE_URL names")
        parser.add_argument(
            "--password-env",
            default="",
            help="name of an environment variable holding the role's password (set on each run)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("db_app_role is for PostgreSQL (the embedded SQLite has no roles)")
        role = options["role"]
        if not _ROLE_NAME.match(role):
            raise CommandError("a role name is lower-case letters, digits and underscores")
        password = os.environ.get(options["password_env"], "") if options["password_env"] else ""
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user")
            (owner,) = cursor.fetchone()
            if owner == role:
                raise CommandError("run this as the database owner, not as the app's role")
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            row = cursor.fetchone()
            if row is None:
                cursor.execute(f"CREATE ROLE {role} LOGIN")
            elif row[0]:
                raise CommandError(f"{role} is a superuser: it could do anything to the audit log")
            if password:
                cursor.execute(f"ALTER ROLE {role} PASSWORD %s", [password])
            for statement in _grants(role, owner, connection.settings_dict["NAME"]):
                cursor.execute(statement)
        self.stdout.write(f"{role}: data read-write, {AuditEntry._meta.db_table} SELECT and INSERT only")


def _grants(role: str, owner: str, database: str) -> list[str]:
    audit = AuditEntry._meta.db_table
    quoted_db, owner = connection.ops.quote_name(database), connection.ops.quote_name(owner)
    defaults = f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public GRANT"
    return [
        f"REVOKE {owner} FROM {role}",  # no membership in the owner's role (and its rights)
        f"GRANT CONNECT ON DATABASE {quoted_db} TO {role}",
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT {TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT {SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA public TO {role}",
        f"REVOKE {AUDIT_REVOKED} ON {audit} FROM {role}",
        f"{defaults} {TABLE_PRIVILEGES} ON TABLES TO {role}",
        f"{defaults} {SEQUENCE_PRIVILEGES} ON SEQUENCES TO {role}",
    ]
