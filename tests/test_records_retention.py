"""Event retention: pruning by count and age keeps a gap-free suffix; resuming before it resets."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.utils import timezone

from accounts.models import Organization
from records.models import RecordEvent, RecordResource, RecordSession
from records.services import events_prune
from records.tasks import prune_events
from tests.support import live
from tests.support.records_support import SseClient, index_study, rename_patient, stream_timeout
from tests.support.world import World


def seqs(org: Organization) -> list[int]:
    return list(RecordEvent.objects.filter(organization=org).order_by("seq").values_list("seq", flat=True))


def test_it_keeps_the_newest_events_per_organization(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    acme, globex = world.bob.org, world.carol.org
    for n in range(3):
        index_study(acme, patient_id=f"P{n}", study_uid=f"1.2.3.{n}")  # acme seq 1..6
    index_study(globex, patient_id="G1", study_uid="9.9.9.1")  # globex seq 1..2
    monkeypatch.setattr(settings, "RECORDS_RETENTION_EVENTS", 4)
    assert events_prune() == 2
    assert seqs(acme) == [3, 4, 5, 6] and seqs(globex) == [1, 2]
    assert RecordResource.objects.filter(organization=acme).count() == 6  # current state is kept


def test_it_drops_events_older_than_the_retention_days(world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    rename_patient(acme, "P1", "Doe^Janet")
    old = timezone.now() - timedelta(days=settings.RECORDS_RETENTION_DAYS + 1)
    RecordEvent.objects.filter(organization=acme, seq__lte=2).update(created=old)
    RecordSession.objects.create(organization=acme, session_id="idle", updated=old)
    assert prune_events() == 2
    assert seqs(acme) == [3]
    assert not RecordSession.objects.filter(session_id="idle").exists()


def test_it_sends_reset_then_the_snapshot_to_a_position_older_than_the_log(
    server: live.Server, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    acme = world.bob.org
    for n in range(3):
        index_study(acme, patient_id=f"P{n}", study_uid=f"1.2.3.{n}")
    monkeypatch.setattr(settings, "RECORDS_RETENTION_EVENTS", 2)
    events_prune()
    headers = {**world.bob.headers, "Accept": "text/event-stream", "Last-Event-ID": "3"}
    with httpx.stream("GET", f"{server.url}/api/v2/records/stream", headers=headers, timeout=stream_timeout()) as r:
        reader = SseClient(r)
        reset = reader.next()
        snapshot = reader.until("snapshot-end")
    assert reset.event == "reset" and reset.id is None
    assert reset.json == {"reason": "position-expired", "seq": 6}
    assert len(snapshot) == 7 and snapshot[-1].id == "6"
    # A position still in the log resumes normally; one from the future resets too.
    for position, first in (("4", "5"), ("99", None)):
        headers["Last-Event-ID"] = position
        with httpx.stream("GET", f"{server.url}/api/v2/records/stream", headers=headers, timeout=stream_timeout()) as r:
            event = SseClient(r).next()
        assert (event.id, event.event) == (first, "Patient" if first else "reset")
