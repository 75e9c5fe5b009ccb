"""The configured object store, and the key scheme for what PrizMed stores in it."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from studies.storage import LocalStorage, Storage


@cache
def storage() -> Storage:
    return LocalStorage(settings.PRIZMED_STORAGE_DIR)
