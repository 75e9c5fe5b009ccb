"""End to end: real uploads indexed by a real worker, deletes through the API, and SSE clients.

With Redis (services run) the SSE client listens on another uvicorn process than the one that
takes the uploads, and the indexing runs in a Celery worker: the event crosses processes through
the channel layer. Embedded, there is one process (the index task runs on its thread) and the
wake-up crosses threads of that process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.conf import settings

from records.models import RecordEvent
from records.selectors import log_head
from tests.support import live
from tests.support.dicomfactory import make_instance
from tests.support.indexing import http_upload, wait_indexed
from tests.support.records_support import SseClient, SseEvent, stream_timeout, validate
from tests.support.world import Party, World

PATH = "/api/v2/records/stream"


@pytest.fixture
def listener(request: pytest.FixtureRequest, server: live.Server) -> live.Server:
    """Where SSE clients connect: another process than the changes' when Redis links processes."""
    return request.getfixturevalue("server2") if settings.REDIS_URL else server  # type: ignore[no-any-return]


@contextmanager
def sse(srv: live.Server, party: Party, **headers: str) -> Iterator[SseClient]:
    with (
        httpx.Client(base_url=srv.url, timeout=stream_timeout()) as client,
        client.stream("GET", PATH, headers={**party.headers, "Accept": "text/event-stream", **headers}) as response,
    ):
        assert response.status_code == 200
        yield SseClient(response)


def upload(api: httpx.Client, party: Party, *, patient_id: str, study_uid: str, instances: int = 2) -> str:
    series = f"{study_uid}.1"
    files = [
        make_instance(
            patient_id=patient_id, study_uid=study_uid, series_uid=series, sop_uid=f"{series}.{n}", instance_number=n
        )
        for n in range(1, instances + 1)
    ]
    upload_id = http_upload(api, party, files)
    assert wait_indexed(upload_id).state == "done"
    return upload_id


def events_until(reader: SseClient, seq: int) -> list[SseEvent]:
    events: list[SseEvent] = []
    while not events or int(events[-1].id or 0) < seq:
        events.append(reader.next())
    return events


def test_it_streams_an_uploaded_study_to_a_listener(
    api: httpx.Client, listener: live.Server, indexer: live.Process | None, world: World
) -> None:
    with sse(listener, world.bob) as reader:
        reader.until("snapshot-end")
        upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.1")
        patient, study = reader.next(), reader.next()
    assert (patient.event, study.event) == ("Patient", "ImagingStudy")
    assert validate(patient.json).identifier[0].value == "P1"
    parsed = validate(study.json)
    assert parsed.id == "1.2.840.99.1" and parsed.numberOfInstances == 2
    assert [i.uid for i in parsed.series[0].instance] == ["1.2.840.99.1.1.1", "1.2.840.99.1.1.2"]
    stored = RecordEvent.objects.get(organization=world.bob.org, seq=int(study.id or 0))
    assert stored.kind == "ImagingStudy" and stored.resource == study.json


def test_it_resends_exactly_the_missed_events_after_last_event_id(
    api: httpx.Client, listener: live.Server, indexer: live.Process | None, world: World
) -> None:
    with sse(listener, world.bob) as reader:
        reader.until("snapshot-end")
        upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.1")
        last = events_until(reader, log_head(organization_id=world.bob.org.pk))[-1].id
    # The connection is gone; more uploads are indexed meanwhile.
    upload(api, world.bob, patient_id="P2", study_uid="1.2.840.99.2")
    upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.3")
    head = log_head(organization_id=world.bob.org.pk)
    with sse(listener, world.bob, **{"Last-Event-ID": str(last)}) as reader:
        missed = events_until(reader, head)
        # Nothing repeated after them: the next event is the next change.
        api.delete("/studies/1.2.840.99.2", headers=world.alice.headers).raise_for_status()
        after = reader.next()
    assert [int(e.id or 0) for e in missed] == list(range(int(last or 0) + 1, head + 1))
    expected = RecordEvent.objects.filter(organization=world.bob.org, seq__gt=int(last or 0), seq__lte=head)
    assert [e.event for e in missed] == list(expected.order_by("seq").values_list("kind", flat=True))
    assert (after.event, after.id, after.json["id"]) == ("deleted", str(head + 1), "1.2.840.99.2")


def test_it_continues_an_x_record_stream_session_after_a_reconnect(
    api: httpx.Client, listener: live.Server, indexer: live.Process | None, world: World
) -> None:
    session = {"X-Record-Stream": "gateway-7"}
    with sse(listener, world.bob, **session) as reader:
        reader.until("snapshot-end")
        upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.1")
        events_until(reader, log_head(organization_id=world.bob.org.pk))
    first_head = log_head(organization_id=world.bob.org.pk)
    upload(api, world.bob, patient_id="P2", study_uid="1.2.840.99.2")
    head = log_head(organization_id=world.bob.org.pk)
    with sse(listener, world.bob, **session) as reader:  # no position given: the session has it
        missed = events_until(reader, head)
    assert [int(e.id or 0) for e in missed] == list(range(first_head + 1, head + 1))
    assert {e.event for e in missed} == {"Patient", "ImagingStudy"}


def test_it_sends_deleted_when_a_study_is_deleted_through_the_api(
    api: httpx.Client, listener: live.Server, indexer: live.Process | None, world: World
) -> None:
    upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.1")
    with sse(listener, world.bob, **{"X-Record-Seq": str(log_head(organization_id=world.bob.org.pk))}) as reader:
        api.delete("/studies/1.2.840.99.1", headers=world.alice.headers).raise_for_status()
        event = reader.next()
    assert event.event == "deleted" and event.json["id"] == "1.2.840.99.1"
    assert RecordEvent.objects.get(organization=world.bob.org, seq=int(event.id or 0)).study_uid == "1.2.840.99.1"


def test_it_never_streams_another_organizations_uploads(
    api: httpx.Client, listener: live.Server, indexer: live.Process | None, world: World
) -> None:
    with sse(listener, world.bob) as reader:
        reader.until("snapshot-end")
        upload(api, world.carol, patient_id="G1", study_uid="1.2.840.77.1")  # globex first
        upload(api, world.bob, patient_id="P1", study_uid="1.2.840.99.1")
        events = events_until(reader, log_head(organization_id=world.bob.org.pk))
    assert all("1.2.840.77" not in e.data and "G1" not in e.data for e in events)
    assert {e.json["resourceType"] for e in events} == {"Patient", "ImagingStudy"}
