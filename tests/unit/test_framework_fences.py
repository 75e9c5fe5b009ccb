"""The framework shortcuts are fenced, one module each, and reviewed against one Django release.

Each module reaches past a framework's public API for speed or shape, and has an equivalence
test against the plain framework path. A Django upgrade can change what they lean on without
any of those tests noticing at first: this test fails as soon as Django leaves the reviewed
release, naming what to review again.
"""

from __future__ import annotations

import importlib

import django
import pytest

REVIEWED_DJANGO = (5, 2)  # 5.2.x, the LTS these shortcuts were written and reviewed against

# module -> what it leans on, and the test that holds it equal to the plain path
FENCED = {
    "core.compiled_lookup": "SQLCompiler internals and get_related_populators (tests/unit/test_compiled_lookup.py)",
    "core.compiled_search": "SQLCompiler internals, the parameters Django makes of lookup values, LIMIT / OFFSET "
    "at the SQL's end (tests/unit/test_compiled_search.py, tests/unit/test_qido_compiled.py)",
    "core.one_hop_asgi": "ASGIHandler/BaseHandler internals (tests/unit/test_one_hop_asgi.py)",
    "core.counters": "RedisCache._cache, its client (tests/unit/test_counters.py)",
    "studies.index.item_outcomes": "raw UPDATE ... FROM (VALUES ...) on SQLite and PostgreSQL "
    "(tests/unit/test_item_outcomes.py)",
    "core.startup_gc": "gc.freeze at the end of start-up (tests/unit/test_startup_gc.py)",
    "core.model_fields": "the PostgreSQL insert compiler keeping VALUES for a field with get_placeholder "
    "(tests/unit/test_model_fields.py)",
    "core.method_route": "drf-spectacular's view enumeration through `cls` (tests/test_auth.py covers every route)",
}


@pytest.mark.parametrize("module", FENCED)
def test_it_keeps_each_shortcut_in_its_own_module(module: str) -> None:
    assert importlib.import_module(module).__doc__


def test_it_runs_on_the_django_release_the_shortcuts_were_reviewed_against() -> None:
    review = "\n".join(f"  {module}: {leans_on}" for module, leans_on in FENCED.items())
    assert django.VERSION[:2] == REVIEWED_DJANGO, (
        f"Django {django.get_version()} is not the reviewed {REVIEWED_DJANGO[0]}.{REVIEWED_DJANGO[1]}.x: "
        f"review these modules (and their equivalence tests) before moving REVIEWED_DJANGO:\n{review}"
    )
