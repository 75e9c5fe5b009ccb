"""The audit log becomes append-only in the database too, and the Auditors group may read it.

On PostgreSQL, triggers refuse UPDATE, DELETE and TRUNCATE on the table: the application role
cannot rewrite history even with raw SQL. (A database owner can still disable the triggers; the
hash chain makes that detectable.) Auditors get view permission on the audit log and on the
indexed studies and uploads, nothing else.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.management import create_permissions
from django.db import migrations

TRIGGERS = """
CREATE OR REPLACE FUNCTION accounts_auditentry_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER auditentry_no_update_delete BEFORE UPDATE OR DELETE ON accounts_auditentry
    FOR EACH ROW EXECUTE FUNCTION accounts_auditentry_refuse();
CREATE TRIGGER auditentry_no_truncate BEFORE TRUNCATE ON accounts_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION accounts_auditentry_refuse();
"""
DROP_TRIGGERS = """
DROP TRIGGER IF EXISTS auditentry_no_truncate ON accounts_auditentry;
DROP TRIGGER IF EXISTS auditentry_no_update_delete ON accounts_auditentry;
DROP FUNCTION IF EXISTS accounts_auditentry_refuse();
"""
AUDITOR_VIEWS = [
    ("accounts", "auditentry"),
    ("studies", "patient"),
    ("studies", "study"),
    ("studies", "series"),
    ("studies", "instance"),
    ("studies", "upload"),
    ("studies", "uploaditem"),
]


def add_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(TRIGGERS, params=None)


def drop_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_TRIGGERS, params=None)


def grant_auditors(apps: Any, schema_editor: Any) -> None:
    # Permissions are normally created after migrate (post_migrate); create them now.
    for label in ("accounts", "studies"):
        config = apps.get_app_config(label)
        config.models_module = True
        create_permissions(config, verbosity=0, apps=apps)
        config.models_module = None
    Permission = apps.get_model("auth", "Permission")
    group, _ = apps.get_model("auth", "Group").objects.get_or_create(name="Auditors")
    for app_label, model in AUDITOR_VIEWS:
        group.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=f"view_{model}"))


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_auditentry"),
        ("studies", "0002_index_fields"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]
    operations = [
        migrations.RunPython(add_triggers, drop_triggers),
        migrations.RunPython(grant_auditors, migrations.RunPython.noop),
    ]
