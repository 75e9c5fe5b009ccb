"""Bearer-key authentication: the one implementation behind DRF and the ASGI consumers."""

from __future__ import annotations

import hmac
from datetime import timedelta

from django.utils import timezone

from accounts.key_cache import key_cache_get, key_cache_put
from accounts.keys import key_digest, key_is_well_formed, key_prefix
from accounts.models import APIKey
from core.compiled_lookup import CompiledLookup

# last_used is advisory: writing it at most once a minute keeps reads read-only.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def bearer_token(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


# Every API request makes this lookup: compiled once (core/compiled_lookup.py).
_key_by_prefix = CompiledLookup(
    lambda prefix: APIKey.objects.select_related("organization__plan").filter(prefix=prefix), prefix="\x00prefix"
)


def key_presented(header: str | None) -> APIKey | None:
    """The key an Authorization header value names, active or not (revoked, expired), or None
    when it names no key: only the holder of a key's plaintext is ever attributed to it."""
    token = bearer_token(header)
    if token is None or not key_is_well_formed(token):
        return None
    key = _key_by_prefix.first(prefix=key_prefix(token))
    if key is None or not hmac.compare_digest(key.digest, key_digest(token)):
        return None
    return key


def key_cached(header: str | None) -> APIKey | None:
    """The active key named by an Authorization header value when this process verified it
    recently and nothing is due to be written (accounts/key_cache.py); None otherwise, when the
    caller takes ``key_authenticate``'s path. No database access: safe on the event loop."""
    token = bearer_token(header)
    if token is None:
        return None
    key = key_cache_get(key_digest(token))
    if key is None or not key.is_active() or key.last_used is None:
        return None
    return key if timezone.now() - key.last_used < LAST_USED_RESOLUTION else None


def key_authenticate(header: str | None) -> APIKey | None:
    """The active key named by an Authorization header value, or None (for any reason). A key
    verified in the last few seconds is not looked up again (accounts/key_cache.py)."""
    token = bearer_token(header)
    if token is None:
        return None
    digest = key_digest(token)
    key = key_cache_get(digest)
    if key is None:
        key = key_presented(header)
        if key is None or not key.is_active():
            return None
        key_cache_put(digest, key)
    elif not key.is_active():  # expired since it was cached
        return None
    now = timezone.now()
    if key.last_used is None or now - key.last_used >= LAST_USED_RESOLUTION:
        APIKey.objects.filter(pk=key.pk).update(last_used=now)
        key.last_used = now
    return key
