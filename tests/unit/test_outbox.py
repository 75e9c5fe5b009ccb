"""outbox: a task is recorded with the caller's data and runs once that commits (embedded mode
here; the broker outage is tests/test_faults_broker.py's, with real processes)."""

from __future__ import annotations

import threading

import pytest
from celery import shared_task
from django.db import transaction
from django.test import override_settings

from outbox.dispatch import outbox_add
from outbox.models import OutboxTask
from tests.support.ingest_support import wait_for

# serialized_rollback, as the world fixture: a plain transactional flush drops the seeded
# plans and content types that later tests restore, and they then clash.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)
ran: list[str] = []
done = threading.Event()


@shared_task(name="tests.outbox_record")
def record(value: str) -> None:
    ran.append(value)
    done.set()


def test_a_rolled_back_transaction_records_and_sends_nothing() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        outbox_add(record, "rolled back")
        raise RuntimeError("the caller's transaction fails")
    assert not OutboxTask.objects.exists()
    assert "rolled back" not in ran


@override_settings(CELERY_BROKER_URL="")
def test_a_committed_task_runs_once_and_leaves_no_row() -> None:
    with transaction.atomic():
        outbox_add(record, "committed")
        assert OutboxTask.objects.count() == 1  # recorded with the caller's rows

    assert done.wait(15)
    wait_for(lambda: not OutboxTask.objects.exists())
    assert ran.count("committed") == 1
