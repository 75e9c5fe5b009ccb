"""A delete attempt without a valid key is audited too (issue 10 item 15): no key, a made-up key,
and revoked or expired keys presented in full (named, with their organization)."""

from __future__ import annotations

import uuid

import httpx

from accounts.audit.log import NO_ORGANIZATION, audit_verify
from accounts.keys import key_generate
from accounts.models import AuditEntry
from tests.support.world import World

STUDY = "1.2.826.0.1.3680043.8.498.1"


def test_it_audits_deletes_refused_for_want_of_a_valid_key(api: httpx.Client, world: World) -> None:
    made_up = key_generate().plaintext  # well formed, checksum right, but no such key
    attempts = [
        ({}, None),
        ({"Authorization": "Bearer not-a-key"}, None),
        ({"Authorization": f"Bearer {made_up}"}, None),
        (world.revoked.headers, world.revoked),
        (world.expired.headers, world.expired),
    ]
    for headers, named in attempts:
        request_id = str(uuid.uuid4())
        sent = {**headers, "X-Request-Id": request_id, "User-Agent": "probe/1.0"}
        response = api.delete(f"/studies/{STUDY}", headers=sent)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"

        entry = AuditEntry.objects.get(request_id=request_id)
        assert (entry.action, entry.outcome, entry.status_code) == ("study.delete", "unauthenticated", 401)
        assert entry.study_uid == STUDY
        assert entry.user_agent == "probe/1.0" and entry.client_address == "127.0.0.1"
        if named is None:
            assert (entry.organization_id_value, entry.organization_slug, entry.key_id) == (NO_ORGANIZATION, "", None)
        else:
            assert (entry.organization_id_value, entry.key_id) == (named.org.pk, named.key.pk)
            assert entry.key_prefix == named.key.prefix
    assert AuditEntry.objects.count() == len(attempts)
    assert audit_verify() is None


def test_a_tenant_sees_its_revoked_keys_attempts_and_nobody_elses(api: httpx.Client, world: World) -> None:
    api.delete(f"/studies/{STUDY}", headers=world.revoked.headers)
    api.delete(f"/studies/{STUDY}", headers={"Authorization": "Bearer pzm_nothing"})

    acme = api.get("/audit-events", headers=world.alice.headers).json()
    assert [e["resource"]["outcomeDesc"] for e in acme["entry"]] == ["unauthenticated"]
    globex = api.get("/audit-events", headers={**world.carol.headers}).status_code
    assert globex == 403  # a standard key reads no audit log
