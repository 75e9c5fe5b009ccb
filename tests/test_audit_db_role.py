"""An audit log an auditor can trust (issue 10 item 11), on PostgreSQL: the app's own database
role (`manage.py db_app_role`) can only read and append to it, and the chain is keyed, so an
edited or forged entry is found even when every later hash is recomputed without the key."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from accounts.audit.log import Actor, Subject, audit_append, audit_verify, entry_hash, legacy_entry_hash
from accounts.models import AuditEntry
from tests.support import live
from tests.support.world import Party, World

pytestmark = pytest.mark.services  # the services run is the PostgreSQL run


def app_role_name() -> str:
    # Roles belong to the whole PostgreSQL cluster: named after this suite's own test database.
    return f"{settings.DATABASES['default']['NAME']}_app"


@pytest.fixture
def app_role(world: World) -> Iterator[str]:
    assert connection.vendor == "postgresql"
    role = app_role_name()
    call_command("db_app_role", role)
    yield role
    with connection.cursor() as cursor:
        cursor.execute(f"DROP OWNED BY {role}")  # its grants in this database
        cursor.execute(f"DROP ROLE IF EXISTS {role}")


def connect_as(role: str) -> psycopg.Connection[tuple[object, ...]]:
    db = settings.DATABASES["default"]
    return psycopg.connect(live.database_url({**db, "USER": role, "PASSWORD": ""}), autocommit=True)


def append(party: Party, study_uid: str = "1.2.3") -> AuditEntry:
    actor = Actor(organization=party.org, key=party.key, request_id=str(uuid.uuid4()))
    return audit_append(action="study.delete", outcome="success", status_code=200, actor=actor,
                        subject=Subject(study_uid=study_uid))  # fmt: skip


def test_the_app_role_can_only_read_and_append_to_the_audit_log(app_role: str, world: World) -> None:
    call_command("db_app_role", app_role)  # again, as after every migrate: idempotent
    entry = append(world.alice)
    refused = [
        "ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_update_delete",
        "ALTER TABLE accounts_auditentry DISABLE TRIGGER ALL",
        f"UPDATE accounts_auditentry SET outcome = 'x' WHERE id = {entry.pk}",
        f"DELETE FROM accounts_auditentry WHERE id = {entry.pk}",
        "TRUNCATE accounts_auditentry",
        "DROP TABLE accounts_auditentry",
        "DROP TRIGGER auditentry_no_update_delete ON accounts_auditentry",
        "ALTER TABLE accounts_auditentry RENAME TO audit_old",
    ]
    with connect_as(app_role) as conn:
        for sql in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        # Reading works, and so does the rest of the data (the app needs it all).
        assert conn.execute("SELECT count(*) FROM accounts_auditentry").fetchone() == (1,)
        conn.execute("UPDATE accounts_apikey SET name = name WHERE id = %s", [world.bob.key.pk])
    # A table a later migration creates (as the owner) is the app's to use too.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE accounts_later_table (id bigint)")
    with connect_as(app_role) as conn:
        conn.execute("INSERT INTO accounts_later_table VALUES (1)")
        conn.execute("DELETE FROM accounts_later_table")
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE accounts_later_table")
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


def test_an_entry_forged_by_the_app_role_is_found(app_role: str, world: World) -> None:
    first = append(world.alice)
    forged = AuditEntry(
        created=first.created, action="study.delete", outcome="success", status_code=200,
        organization_id_value=world.carol.org.pk, organization_slug="globex", request_id=str(uuid.uuid4()),
        study_uid="9.9.9", prev_hash=first.entry_hash,
    )  # fmt: skip
    forged.entry_hash = legacy_entry_hash(forged)  # the documented formula, without the key
    columns = ["created", "action", "outcome", "status_code", "organization_id_value", "organization_slug",
               "key_prefix", "key_role", "request_id", "client_address", "user_agent", "study_uid", "patient_id",
               "series_count", "instance_count", "bytes", "prev_hash", "entry_hash"]  # fmt: skip
    with connect_as(app_role) as conn:
        row = conn.execute(
            f"INSERT INTO accounts_auditentry ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
            "RETURNING id",
            [getattr(forged, c) for c in columns],
        ).fetchone()
    assert row is not None
    assert audit_verify() == row[0]


def test_an_owner_who_rewrites_the_chain_without_the_key_is_found(world: World) -> None:
    """The owner (or a superuser) can switch the guards off and rewrite rows; recomputing every
    later hash with the unkeyed formula, or with a wrong key, still leaves the edit visible."""
    entries = [append(world.alice), append(world.bob), append(world.carol)]
    edited = entries[1]

    def rewrite(hash_of: object) -> None:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_update_delete")
            prev = entries[0].entry_hash
            for entry in AuditEntry.objects.filter(pk__gte=edited.pk).order_by("id"):
                entry.study_uid = "1.2.999" if entry.pk == edited.pk else entry.study_uid
                entry.prev_hash = prev
                entry.entry_hash = hash_of(entry)  # type: ignore[operator]
                cursor.execute(
                    "UPDATE accounts_auditentry SET study_uid = %s, prev_hash = %s, entry_hash = %s WHERE id = %s",
                    [entry.study_uid, entry.prev_hash, entry.entry_hash, entry.pk],
                )
                prev = entry.entry_hash
            cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER auditentry_no_update_delete")

    rewrite(legacy_entry_hash)
    assert audit_verify() == edited.pk
    with override_settings(PRIZMED_AUDIT_KEY="a-guessed-key-that-is-not-the-real-one-xx"):
        rewrite(entry_hash)  # the keyed formula, under a wrong key
    assert audit_verify() == edited.pk
    # Only the key's holder could make it verify: the key is the secret, not the formula.
    rewrite(entry_hash)
    assert audit_verify() is None


def test_legacy_unkeyed_entries_verify_only_as_the_counted_start_of_the_log(world: World) -> None:
    entries = [append(world.alice), append(world.bob)]
    with connection.cursor() as cursor:  # as a log begun before the upgrade: the first entry unkeyed
        cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_update_delete")
        first = entries[0]
        first.entry_hash = legacy_entry_hash(first)
        cursor.execute("UPDATE accounts_auditentry SET entry_hash = %s WHERE id = %s", [first.entry_hash, first.pk])
        second = entries[1]
        second.prev_hash = first.entry_hash
        cursor.execute(
            "UPDATE accounts_auditentry SET prev_hash = %s, entry_hash = %s WHERE id = %s",
            [second.prev_hash, entry_hash(second), second.pk],
        )
        cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER auditentry_no_update_delete")
    assert audit_verify() == first.pk
    with override_settings(PRIZMED_AUDIT_LEGACY_ENTRIES=1):
        assert audit_verify() is None


def test_a_server_running_as_the_app_role_serves_and_audits(
    app_role: str, world: World, child_env: dict[str, str], run_dir: Path
) -> None:
    db = settings.DATABASES["default"]
    env = {**child_env, "DATABASE_URL": live.database_url({**db, "USER": app_role, "PASSWORD": ""})}
    srv = live.server(env, run_dir)
    try:
        with httpx.Client(base_url=f"{srv.url}/api/v2", timeout=30) as api:
            assert api.get("/studies", headers=world.bob.headers).status_code == 200
            refused = api.delete("/studies/1.2.3.4", headers=world.alice.headers)
            assert refused.status_code == 404, refused.text
            assert api.delete("/studies/1.2.3.4", headers={"Authorization": "Bearer x"}).status_code == 401
            events = api.get("/audit-events", headers=world.alice.headers).json()
    finally:
        srv.stop()
    assert [json.dumps(e["resource"]["outcomeDesc"]) for e in events["entry"]] == ['"not-found"']
    assert AuditEntry.objects.count() == 2
    assert audit_verify() is None
