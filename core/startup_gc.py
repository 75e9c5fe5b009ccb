"""Keep the cyclic garbage collector off what start-up loaded (``gc.freeze``).

What a server process has loaded once its application is built (Django, the apps, their
imports) lives as long as the process; a full collection would walk it again and again, a
latency tail of its own. ``gc.freeze`` moves every object alive at the call into the permanent
generation, which collections skip. Its price: garbage that exists at that moment is never
collected, so the call belongs at the very end of start-up (prizmed/asgi.py).
tests/unit/test_startup_gc.py shows both sides.
"""

from __future__ import annotations

import gc


def startup_heap_freeze() -> int:
    """Freeze everything alive now; how many objects collections will skip from now on."""
    gc.freeze()
    return gc.get_freeze_count()
