"""Keep the cyclic garbage collector off what start-up loaded (``gc.freeze``).

What a server process has loaded once its application is built (Django, the apps, their
imports) lives as long as the process; a full collection would walk it again and again, a
latency tail of its own. ``gc.freeze`` moves every object alive at the call into the permanent
generation, which collections skip. Its price: garbage that exists at that moment is never
collected, so the call belongs at the very end of start-up: prizmed/asgi.py for a web server,
Celery's `worker_process_init` for a worker's pool process (prizmed/celery.py), once it holds
what the worker loaded before forking it. There the full collections walked Django, the apps
and pydicom over and over: three of them cost 220 ms while one process indexed a body of 1,000
instances, and freezing took its CPU from 0.97 to 0.67 ms per instance (docs/benchmarks.md).
tests/unit/test_startup_gc.py shows both sides.
"""

from __future__ import annotations

import gc


def startup_heap_freeze() -> int:
    """Freeze everything alive now; how many objects collections will skip from now on."""
    gc.freeze()
    return gc.get_freeze_count()


def worker_heap_freeze(**_: object) -> None:
    """Celery's ``worker_process_init`` receiver: a pool process freezes what it starts with."""
    startup_heap_freeze()
