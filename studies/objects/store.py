"""The configured object store: the one ``storage()`` every part of PrizMed writes and reads."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from studies.objects.local import LocalStorage
from studies.objects.storage import Storage


@cache
def storage() -> Storage:
    return LocalStorage(settings.PRIZMED_STORAGE_DIR)
