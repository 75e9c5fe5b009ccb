"""core.startup_gc: what is alive at start-up is skipped by collections, garbage included."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator

import pytest

from core.startup_gc import startup_heap_freeze


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.collect()
    yield
    gc.unfreeze()  # this test process keeps collecting as before


def test_it_moves_what_is_alive_out_of_the_collectors_walk(unfrozen: None) -> None:
    loaded = Node()
    assert any(obj is loaded for obj in gc.get_objects())

    frozen = startup_heap_freeze()

    assert frozen == gc.get_freeze_count() > 0
    assert not any(obj is loaded for obj in gc.get_objects())  # collections no longer walk it


def test_it_keeps_garbage_that_exists_when_it_is_called(unfrozen: None) -> None:
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle only the cyclic collector can free
    gone = weakref.ref(a)
    del a, b

    startup_heap_freeze()
    gc.collect()
    assert gone() is not None  # the price: why the freeze comes last at start-up

    gc.unfreeze()
    gc.collect()
    assert gone() is None


def test_a_celery_pool_process_freezes_what_it_starts_with() -> None:
    # In a child interpreter: the Celery app as `celery -A prizmed worker` loads it, then the
    # signal a pool process sends once it is forked.
    code = (
        "import gc, prizmed.celery\n"
        "from celery import signals\n"
        "before = gc.get_freeze_count()\n"
        "signals.worker_process_init.send(sender=None)\n"
        "print(before, gc.get_freeze_count())\n"
    )
    env = {**os.environ, "SECRET_KEY": "test-only-not-a-secret"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    before, after = map(int, out.split())
    assert before == 0 and after > 10_000  # Django, the apps and their imports
