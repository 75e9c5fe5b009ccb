"""Verified keys kept in this process for a few seconds, so most API requests make no key query.

A key is looked up and its digest compared on its first request; the verified key, with its
organization and plan, then serves this process's requests presenting the same token for at
most PRIZMED_KEY_CACHE_SECONDS (docs/security.md). Expiry is still checked on every request.
The cache is emptied at once by a revocation through ``key_revoke`` (in the revoking process,
and wherever its wake-up reaches: accounts/key_watch.py) and by any key, organization or plan
saved or deleted through this process's ORM (the dashboard's forms); a change made elsewhere
(another process's ORM, SQL) is seen once the entry ages out. 0 turns the cache off.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db.models.signals import post_delete, post_save

from accounts.models import APIKey, Organization, Plan

MAX_ENTRIES = 10_000  # only verified keys get in; this bounds the memory of a huge key table

# By the token's digest (accounts/keys.key_digest), so no plaintext key is kept.
_verified: dict[str, tuple[APIKey, float]] = {}  # digest -> (key, monotonic deadline)


def key_cache_get(digest: str) -> APIKey | None:
    """The key verified for this token within the cache's lifetime, or None."""
    entry = _verified.get(digest)
    if entry is None or entry[1] <= time.monotonic():
        return None
    return entry[0]


def key_cache_put(digest: str, key: APIKey) -> None:
    ttl = settings.PRIZMED_KEY_CACHE_SECONDS
    if ttl <= 0:
        return
    if len(_verified) >= MAX_ENTRIES:
        _verified.clear()
    _verified[digest] = (key, time.monotonic() + ttl)


def key_cache_clear(**_: object) -> None:
    """Forget every verified key (a revocation, or a key, organization or plan changed)."""
    _verified.clear()


for _model in (APIKey, Organization, Plan):
    # Signals rather than calls in the services: the dashboard's admin forms save these directly.
    post_save.connect(key_cache_clear, sender=_model, dispatch_uid=f"key_cache_clear_save_{_model.__name__}")
    post_delete.connect(key_cache_clear, sender=_model, dispatch_uid=f"key_cache_clear_delete_{_model.__name__}")
