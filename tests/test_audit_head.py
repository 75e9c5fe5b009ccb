"""The audit log's head, kept outside the database (issue 10 item 11): removing the newest entries
leaves the chain intact, but not a head recorded earlier (`verify_audit_log --expect`)."""

from __future__ import annotations

import io
import logging
import uuid

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from accounts.audit.log import Actor, audit_append, audit_verify
from accounts.models import AuditEntry
from accounts.tasks import log_audit_head
from tests.support.world import World


def append(world: World) -> AuditEntry:
    actor = Actor(organization=world.alice.org, key=world.alice.key, request_id=str(uuid.uuid4()))
    return audit_append(action="study.delete", outcome="success", status_code=200, actor=actor)


def verify(*expect: str) -> str:
    out = io.StringIO()
    call_command("verify_audit_log", *[f"--expect={e}" for e in expect], stdout=out)
    return out.getvalue()


def test_a_removed_tail_shows_against_a_recorded_head(world: World, caplog: pytest.LogCaptureFixture) -> None:
    append(world)
    newest = append(world)
    with caplog.at_level(logging.INFO, logger="prizmed.audit"):
        anchor = log_audit_head()
    assert anchor == f"{newest.pk}:{newest.entry_hash}"
    assert any(getattr(r, "audit_head", None) == anchor for r in caplog.records)
    assert f"head {anchor}" in verify(anchor)

    with connection.cursor() as cursor:  # the owner's rights: guard off, newest entry gone
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditentry DISABLE TRIGGER auditentry_no_update_delete")
        cursor.execute("DELETE FROM accounts_auditentry WHERE id = %s", [newest.pk])
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE accounts_auditentry ENABLE TRIGGER auditentry_no_update_delete")

    assert audit_verify() is None  # the chain alone cannot tell
    verify()
    with pytest.raises(CommandError, match=f"entry {newest.pk} recorded as a head is gone or changed"):
        verify(anchor)


def test_it_refuses_a_malformed_head(world: World) -> None:
    entry = append(world)
    for bad in ("x:abc", f"{entry.pk}", "²:abc"):
        with pytest.raises(CommandError, match="--expect takes ID:HASH"):
            verify(bad)
    with pytest.raises(CommandError, match="gone or changed"):
        verify(f"{entry.pk}:{'0' * 64}")
