"""Writes to organizations and keys. Views, the admin and commands call these, nothing else."""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

from accounts.key_watch import key_access_changed
from accounts.keys import key_generate
from accounts.models import APIKey, Organization, Plan, Role


def organization_ensure(*, slug: str, plan_slug: str | None = None, name: str | None = None) -> Organization:
    """Get or create an organization; a given plan is (re)assigned."""
    plan = Plan.objects.get(slug=plan_slug or "developer")
    org, created = Organization.objects.get_or_create(slug=slugify(slug), defaults={"name": name or slug, "plan": plan})
    if not created and plan_slug and org.plan_id != plan.pk:
        org.plan = plan
        org.save(update_fields=["plan"])
    return org


def key_issue(
    *, organization: Organization, name: str, role: str = Role.STANDARD, expires_at: datetime | None = None
) -> tuple[APIKey, str]:
    """Create a key; returns it with its plaintext, which exists nowhere else from now on."""
    for _ in range(5):  # the visible prefix is unique; retry on the rare collision
        new = key_generate()
        try:
            with transaction.atomic():
                key = APIKey.objects.create(
                    organization=organization,
                    name=name,
                    role=role,
                    prefix=new.prefix,
                    digest=new.digest,
                    expires_at=expires_at,
                )
            return key, new.plaintext
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a unique key prefix")


def key_revoke(*, key: APIKey) -> None:
    """Revoke for good: there is no way back, and a second revoke keeps the first time. Open
    streams and WebSockets of the key end once this commits (accounts/key_watch.py)."""
    APIKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    transaction.on_commit(key_access_changed)
