"""The configured object store: the one ``storage()`` every part of PrizMed writes and reads.

Local files under PRIZMED_STORAGE_DIR (the embedded default), or an S3-compatible store when
PRIZMED_STORAGE_URL is ``s3://bucket/prefix`` (docs/deploy.md).
"""

from __future__ import annotations

from functools import cache

from django.conf import settings

from studies.objects.local import LocalStorage
from studies.objects.s3 import S3Location, S3Storage, s3_client
from studies.objects.storage import Storage


@cache
def storage() -> Storage:
    if settings.PRIZMED_STORAGE_URL:
        client = s3_client(
            timeout=settings.PRIZMED_S3_TIMEOUT_SECONDS,
            max_attempts=settings.PRIZMED_S3_MAX_ATTEMPTS,
            path_style=settings.PRIZMED_S3_PATH_STYLE,
        )
        location = S3Location.parse(settings.PRIZMED_STORAGE_URL)
        return S3Storage(location, client, part_bytes=settings.PRIZMED_S3_PART_BYTES)
    return LocalStorage(settings.PRIZMED_STORAGE_DIR)
