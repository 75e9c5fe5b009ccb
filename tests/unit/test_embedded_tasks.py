"""Embedded mode: tasks and periodic jobs run in the server process when there is no broker."""

from __future__ import annotations

import threading

from celery import shared_task
from django.test import override_settings

from core.tasks import enqueue, start_embedded_beat

calls: list[str] = []
ran = threading.Event()


@shared_task(name="tests.record_call")
def record_call(tag: str) -> None:
    calls.append(tag)
    if calls.count("beat") >= 2:
        ran.set()


@override_settings(CELERY_BROKER_URL="")
def test_it_runs_a_task_on_the_local_thread() -> None:
    done = threading.Event()

    @shared_task(name="tests.set_event")
    def set_event() -> None:
        done.set()

    enqueue(set_event)
    assert done.wait(10)


@override_settings(
    CELERY_BROKER_URL="",
    CELERY_BEAT_SCHEDULE={"tick": {"task": "tests.record_call", "schedule": 0.01, "args": ("beat",)}},
)
def test_it_runs_beat_entries_again_and_again() -> None:
    stop = threading.Event()
    thread = start_embedded_beat(tick_s=0.01, stop=stop)
    try:
        assert thread is not None
        assert ran.wait(10)
    finally:
        stop.set()


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_it_leaves_beat_to_celery_when_a_broker_exists() -> None:
    assert start_embedded_beat() is None
