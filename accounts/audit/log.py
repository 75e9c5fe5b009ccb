"""The tamper-evident audit log: append an entry, verify the chain.

Each entry's `entry_hash` is an HMAC-SHA256, keyed with PRIZMED_AUDIT_KEY (held outside the
database), over the previous entry's hash and the canonical JSON of its own fields, so editing
or removing any row breaks every link after it, and only a holder of the key could re-link
them. Appends take a lock first (an advisory lock on PostgreSQL; SQLite's IMMEDIATE
transactions already serialize writers) so two concurrent appends never chain to the same
predecessor.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet

from accounts.auth import key_presented
from accounts.models import APIKey, AuditEntry, Organization

GENESIS = "0" * 64
NO_ORGANIZATION = 0  # entries of requests that named no key: no tenant
# Arbitrary constant naming the audit chain's advisory lock (PostgreSQL, per database).
_CHAIN_LOCK = 0x50524D41
HASHED_FIELDS = (
    "created", "action", "outcome", "status_code", "organization_id_value", "organization_slug", "key_id",
    "key_prefix", "key_role", "request_id", "client_address", "user_agent", "study_uid", "patient_id",
    "series_count", "instance_count", "bytes", "prev_hash",
)  # fmt: skip


@dataclass(frozen=True)
class Actor:
    """Who asked for a change, as the audit log records it (never the key itself)."""

    organization: Organization
    key: APIKey | None
    request_id: str
    client_address: str = ""
    user_agent: str = ""


@dataclass(frozen=True)
class Subject:
    """What the audited operation was about (a study, for deletes)."""

    study_uid: str = ""
    patient_id: str = ""
    series_count: int = 0
    instance_count: int = 0
    bytes: int = 0


def _chained_text(entry: AuditEntry) -> bytes:
    fields = {name: getattr(entry, name) for name in HASHED_FIELDS}
    fields["created"] = entry.created.isoformat()
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return (entry.prev_hash + canonical).encode()


def entry_hash(entry: AuditEntry) -> str:
    """HMAC-SHA256 (RFC 2104), keyed with PRIZMED_AUDIT_KEY, of the previous entry's hash and
    the canonical JSON of the entry's fields: without the key, nobody who can write the table
    can make an edited chain verify."""
    return hmac.new(settings.PRIZMED_AUDIT_KEY.encode(), _chained_text(entry), hashlib.sha256).hexdigest()


def legacy_entry_hash(entry: AuditEntry) -> str:
    """The unkeyed SHA-256 of entries written before the chain was keyed (upgrades only)."""
    return hashlib.sha256(_chained_text(entry)).hexdigest()


@dataclass(frozen=True)
class Attempt:
    """A request refused for want of a valid key, as the audit log records it: the presented
    Authorization value is used only to name the key it belongs to (revoked or expired), never kept."""

    authorization: str | None
    request_id: str
    client_address: str = ""
    user_agent: str = ""


def audit_append(
    *, action: str, outcome: str, status_code: int, actor: Actor, subject: Subject | None = None
) -> AuditEntry:
    """Append one entry. Inside the caller's transaction when there is one (the change and its
    entry commit together); in a transaction of its own otherwise (a refused request)."""
    entry = AuditEntry(
        action=action,
        outcome=outcome,
        status_code=status_code,
        request_id=actor.request_id,
        client_address=actor.client_address[:64],
        user_agent=actor.user_agent[:300],
        **_party(actor.organization, actor.key),
        **_subject(subject or Subject()),
    )
    return _chain(entry)


def audit_append_unauthenticated(
    *, action: str, outcome: str, status_code: int, attempt: Attempt, subject: Subject | None = None
) -> AuditEntry:
    """Append the entry of a request without a valid key (401, or a Security Alert).

    A revoked or expired key that is presented in full is named, with its organization; anything
    else is recorded under no organization (id 0), so a made-up key prefix cannot write into
    another tenant's log. Such entries are seen in the dashboard, not through GET /audit-events."""
    key = key_presented(attempt.authorization)
    entry = AuditEntry(
        action=action,
        outcome=outcome,
        status_code=status_code,
        request_id=attempt.request_id,
        client_address=attempt.client_address[:64],
        user_agent=attempt.user_agent[:300],
        **_party(key.organization if key else None, key),
        **_subject(subject or Subject()),
    )
    return _chain(entry)


def _party(organization: Organization | None, key: APIKey | None) -> dict[str, Any]:
    return {
        "organization_id_value": organization.pk if organization else NO_ORGANIZATION,
        "organization_slug": organization.slug if organization else "",
        "key_id": key.pk if key else None,
        "key_prefix": key.prefix if key else "",
        "key_role": key.role if key else "",
    }


def _subject(subject: Subject) -> dict[str, Any]:
    return {
        "study_uid": subject.study_uid[:64],
        "patient_id": subject.patient_id,
        "series_count": subject.series_count,
        "instance_count": subject.instance_count,
        "bytes": subject.bytes,
    }


def _chain(entry: AuditEntry) -> AuditEntry:
    """Link the entry to the newest one and save it, under the chain's lock."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_CHAIN_LOCK])
        entry.prev_hash = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first() or GENESIS
        entry.entry_hash = entry_hash(entry)
        entry.save()
    return entry


def audit_verify() -> int | None:
    """The id of the first entry whose link is broken (edited, inserted or a predecessor
    removed, or hashed without the key), or None when the whole chain holds.

    Only the first PRIZMED_AUDIT_LEGACY_ENTRIES entries, before any keyed one, may carry the
    former unkeyed hash (a log begun before an upgrade)."""
    prev = GENESIS
    legacy_left = settings.PRIZMED_AUDIT_LEGACY_ENTRIES
    for entry in AuditEntry.objects.order_by("id").iterator(chunk_size=2000):
        if entry.prev_hash != prev:
            return entry.pk
        if hmac.compare_digest(entry_hash(entry), entry.entry_hash):
            legacy_left = 0  # keyed from here on
        elif legacy_left > 0 and hmac.compare_digest(legacy_entry_hash(entry), entry.entry_hash):
            legacy_left -= 1
        else:
            return entry.pk
        prev = entry.entry_hash
    return None


def audit_head() -> tuple[int, str] | None:
    """The newest entry's id and hash, or None for an empty log: the value to keep outside the
    database (the log pipeline, `verify_audit_log --expect`), since the chain alone cannot show
    that its newest entries were removed."""
    return AuditEntry.objects.order_by("-id").values_list("id", "entry_hash").first()


def audit_head_holds(*, entry_id: int, expected_hash: str) -> bool:
    """Whether an entry recorded earlier as the head is still there with the same hash."""
    stored = AuditEntry.objects.filter(pk=entry_id).values_list("entry_hash", flat=True).first()
    return stored is not None and hmac.compare_digest(stored, expected_hash)


def audit_entry_list(*, organization: Organization, before: int | None = None) -> QuerySet[AuditEntry]:
    """The organization's entries, newest first; `before` an entry id, for paging."""
    entries = AuditEntry.objects.filter(organization_id_value=organization.pk).order_by("-id")
    return entries.filter(id__lt=before) if before is not None else entries
