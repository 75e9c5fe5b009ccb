"""The audit log: hash chain, append-only guards (ORM, admin, PostgreSQL trigger), the verify
command, and `GET /audit-events` as FHIR AuditEvent resources."""

from __future__ import annotations

import subprocess
import sys
import uuid
from typing import Any

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client

from accounts.audit.log import GENESIS, Actor, Subject, audit_append, audit_verify
from accounts.models import AuditEntry
from tests.support import live
from tests.support.fhir_assert import assert_fhir_valid
from tests.support.world import Party, World


def append(party: Party, outcome: str = "success", status: int = 200, study_uid: str = "1.2.3") -> AuditEntry:
    actor = Actor(organization=party.org, key=party.key, request_id=str(uuid.uuid4()), client_address="10.0.0.7",
                  user_agent="tests")  # fmt: skip
    subject = Subject(study_uid=study_uid, patient_id="P1", series_count=2, instance_count=5, bytes=1234)
    return audit_append(action="study.delete", outcome=outcome, status_code=status, actor=actor, subject=subject)


def tamper(sql: str, params: list[int]) -> None:
    """What someone with the database owner's rights could do: switch the guard off, edit."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_update_delete")
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER auditentry_no_update_delete")


def test_it_chains_every_entry_to_the_one_before(world: World) -> None:
    entries = [append(world.alice), append(world.bob, "forbidden", 403), append(world.carol, "not-found", 404)]
    assert entries[0].prev_hash == GENESIS
    assert [e.prev_hash for e in entries[1:]] == [e.entry_hash for e in entries[:-1]]
    assert len({e.entry_hash for e in entries}) == 3
    assert audit_verify() is None
    call_command("verify_audit_log")


def test_it_refuses_every_change_through_the_orm(world: World) -> None:
    entry = append(world.alice)
    entry.outcome = "forbidden"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(bytes=0)
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


def test_it_names_the_first_entry_altered_with_raw_sql(world: World, child_env: dict[str, str]) -> None:
    first, second, _third = append(world.alice), append(world.alice), append(world.alice)
    tamper("UPDATE accounts_auditentry SET bytes = %s WHERE id = %s", [0, second.pk])

    assert audit_verify() == second.pk
    with pytest.raises(CommandError, match=f"entry {second.pk}"):
        call_command("verify_audit_log")
    done = subprocess.run([sys.executable, "manage.py", "verify_audit_log"], cwd=live.ROOT, env=child_env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and f"entry {second.pk}" in done.stderr
    assert first.pk < second.pk


def test_it_notices_a_removed_entry(world: World) -> None:
    _first, second, third = append(world.alice), append(world.bob), append(world.carol)
    tamper("DELETE FROM accounts_auditentry WHERE id = %s", [second.pk])
    assert audit_verify() == third.pk


@pytest.mark.services  # the services run is the PostgreSQL run
def test_the_database_refuses_update_delete_and_truncate(world: World) -> None:
    entry = append(world.alice)
    for sql in (
        "UPDATE accounts_auditentry SET outcome = 'x'",
        "DELETE FROM accounts_auditentry",
        # The test database switches the TRUNCATE trigger off for flushes (conftest); on here.
        "ALTER TABLE accounts_auditentry ENABLE TRIGGER auditentry_no_truncate; TRUNCATE accounts_auditentry",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


def test_it_keeps_the_dashboard_read_only_even_for_superusers(world: World) -> None:
    entry = append(world.alice)
    User.objects.create_superuser("root", "root@acme.test", "correct-horse-battery")
    client = Client()
    client.login(username="root", password="correct-horse-battery")
    page = client.get(f"/admin/accounts/auditentry/{entry.pk}/change/")
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.post(f"/admin/accounts/auditentry/{entry.pk}/change/", {"outcome": "x"}).status_code == 403
    assert client.get(f"/admin/accounts/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.get("/admin/accounts/auditentry/add/").status_code == 403
    listing = client.get("/admin/accounts/auditentry/?outcome=success&action=study.delete")
    assert listing.status_code == 200 and entry.study_uid.encode() in listing.content
    assert b"delete_selected" not in listing.content
    assert AuditEntry.objects.get(pk=entry.pk).outcome == "success"


def test_it_serves_the_organizations_entries_as_fhir_audit_events(api: httpx.Client, world: World) -> None:
    ours = [append(world.alice), append(world.bob, "forbidden", 403)]
    append(world.carol, study_uid="9.9.9")  # globex's: never shown to acme

    response = api.get("/audit-events", params={"_count": 1}, headers=world.alice.headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+json")
    pages = [assert_fhir_valid(response.json())]
    while next_link := [link.url for link in pages[-1].link or [] if link.relation == "next"]:
        pages.append(assert_fhir_valid(httpx.get(str(next_link[0]), headers=world.alice.headers).json()))
    events: list[Any] = [e.resource for page in pages for e in page.entry or []]

    assert [page.type for page in pages] == ["searchset"] * len(pages)
    assert [e.id for e in events] == [str(ours[1].pk), str(ours[0].pk)]  # newest first, one per page
    for event, entry in zip(events, reversed(ours), strict=True):
        assert event.type.system == "http://dicom.nema.org/resources/ontology/DCM"
        assert (event.type.code, event.type.display) == ("110105", "DICOM Study Deleted")
        assert event.action == "D" and event.outcome == ("0" if entry.outcome == "success" else "4")
        assert event.agent[0].who.identifier.value == entry.key_prefix
        assert event.agent[0].network.address == "10.0.0.7"
        study, patient = event.entity
        assert study.what.identifier.value == "urn:oid:1.2.3" and patient.what.identifier.value == "P1"
        details = {d.type: d.valueString for d in study.detail}
        assert details["request_id"] == entry.request_id and details["instance_count"] == "5"
