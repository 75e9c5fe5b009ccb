from __future__ import annotations

import time

from django.conf import settings


def now() -> float:
    """Epoch seconds for rate-limit windows; PRIZMED_CLOCK_FILE pins it in tests."""
    if settings.PRIZMED_CLOCK_FILE:
        with open(settings.PRIZMED_CLOCK_FILE) as fh:
            return float(fh.read())
    return time.time()
