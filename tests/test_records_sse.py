"""GET /records/stream as Server-Sent Events: snapshot, live events, resume, sessions, scoping.

Changes are recorded in this process (as the indexer does, in the transaction of the change);
the SSE client listens on a uvicorn process. Embedded, the servers find new events by re-reading
the log each second; with Redis the channel-layer wake-up reaches them at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from records.models import RecordEvent, RecordSession
from tests.support import live
from tests.support.records_support import (
    SseClient,
    SseEvent,
    delete_study,
    index_study,
    rename_patient,
    stream_timeout,
    validate,
    wait_for,
)
from tests.support.world import World

SSE = {"Accept": "text/event-stream"}


def open_stream(srv: live.Server, world_party_headers: dict[str, str], **headers: str) -> httpx.Client:
    return httpx.Client(base_url=srv.url, headers={**world_party_headers, **SSE, **headers}, timeout=stream_timeout())


@contextmanager
def connect(client: httpx.Client, params: dict[str, str] | None = None) -> Iterator[httpx.Response]:
    with client.stream("GET", "/api/v2/records/stream", params=params) as response:
        assert response.status_code == 200, response.read()
        yield response


def test_it_sends_the_snapshot_then_live_events(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    with open_stream(server, world.bob.headers) as client, connect(client) as response:
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["cache-control"] == "no-store"
        sse = SseClient(response)
        snapshot = sse.until("snapshot-end")
        kinds = sorted(e.event for e in snapshot[:-1])
        assert kinds == ["ImagingStudy", "Patient"]
        assert all(e.id is None for e in snapshot[:-1])  # resources, not events: no position
        assert snapshot[-1].id == "2" and snapshot[-1].json == {"seq": 2, "resources": 2}
        assert sse.retry is not None
        for event in snapshot[:-1]:
            validate(event.json)

        index_study(acme, patient_id="P2", study_uid="1.2.3.2", name="Roe^Rick")
        patient, study = sse.next(), sse.next()
        assert (patient.event, patient.id) == ("Patient", "3")
        assert (study.event, study.id) == ("ImagingStudy", "4")
        parsed = validate(study.json)
        assert parsed.identifier[0].value == "urn:oid:1.2.3.2"
        assert parsed.subject.reference == f"Patient/{patient.json['id']}"
        assert validate(patient.json).name[0].family == "Roe"


def test_it_sends_heartbeat_comments_while_idle(server: live.Server, world: World) -> None:
    with open_stream(server, world.bob.headers) as client, connect(client) as response:
        sse = SseClient(response)
        sse.until("snapshot-end")
        assert sse.next_comment() == "heartbeat"  # the servers' interval is 1 s (conftest)


def test_it_resumes_after_last_event_id_with_nothing_missed_or_repeated(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    with open_stream(server, world.bob.headers) as client:
        with connect(client) as response:
            sse = SseClient(response)
            last = sse.until("snapshot-end")[-1].id
        # Disconnected: three more changes happen.
        index_study(acme, patient_id="P2", study_uid="1.2.3.2")
        rename_patient(acme, "P1", "Doe^Janet")
    with open_stream(server, world.bob.headers, **{"Last-Event-ID": str(last)}) as client:
        with connect(client) as response:
            events = SseClient(response).take(3)
    assert [(e.event, e.id) for e in events] == [("Patient", "3"), ("ImagingStudy", "4"), ("Patient", "5")]
    assert events[2].json["name"][0]["given"] == ["Janet"]


def test_it_resumes_from_x_record_seq_and_since(server: live.Server, world: World) -> None:
    acme = world.bob.org
    for n in range(1, 4):
        index_study(acme, patient_id=f"P{n}", study_uid=f"1.2.3.{n}")  # seq 1..6
    for headers, params in (({"X-Record-Seq": "4"}, None), ({}, {"since": "4"})):
        with open_stream(server, world.bob.headers, **headers) as client, connect(client, params) as response:
            events = SseClient(response).take(2)
            assert [e.id for e in events] == ["5", "6"]


def test_it_continues_an_x_record_stream_session_where_it_left_off(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    session = {"X-Record-Stream": "pacs-gateway-1"}
    with open_stream(server, world.bob.headers, **session) as client:
        with connect(client) as response:
            sse = SseClient(response)
            assert sse.until("snapshot-end")[-1].id == "2"
            index_study(acme, patient_id="P2", study_uid="1.2.3.2")
            assert [e.id for e in sse.take(2)] == ["3", "4"]
        wait_for(lambda: RecordSession.objects.get(session_id="pacs-gateway-1").last_seq == 4)
        index_study(acme, patient_id="P3", study_uid="1.2.3.3")
        rename_patient(acme, "P1", "Doe^Janet")
        with connect(client) as response:  # no Last-Event-ID: the session knows the position
            events = SseClient(response).take(3)
    assert [(e.event, e.id) for e in events] == [("Patient", "5"), ("ImagingStudy", "6"), ("Patient", "7")]
    row = RecordSession.objects.get(session_id="pacs-gateway-1")
    assert row.organization_id == acme.pk and row.api_key_id == world.bob.key.pk
    wait_for(lambda: RecordSession.objects.get(session_id="pacs-gateway-1").last_seq == 7)


def test_it_sends_a_deleted_event(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    with open_stream(server, world.bob.headers, **{"Last-Event-ID": "2"}) as client, connect(client) as response:
        delete_study(acme, "1.2.3.1")
        event = SseClient(response).next()
    assert (event.event, event.id) == ("deleted", "3")
    assert event.json["resourceType"] == "ImagingStudy" and event.json["id"] == "1.2.3.1"
    deleted = validate(event.json)  # every payload validates, a deletion's too (issue 13)
    assert deleted.status == "entered-in-error"
    assert deleted.identifier[0].value == "urn:oid:1.2.3.1"
    assert RecordEvent.objects.get(organization=acme, seq=3).kind == "deleted"


def test_it_never_shows_another_organizations_events(server: live.Server, world: World) -> None:
    index_study(world.carol.org, patient_id="G1", study_uid="9.9.9.1")  # globex, before and during
    with open_stream(server, world.bob.headers) as client, connect(client) as response:
        sse = SseClient(response)
        assert sse.until("snapshot-end") == [SseEvent("snapshot-end", '{"seq": 0, "resources": 0}', "0")]
        index_study(world.carol.org, patient_id="G2", study_uid="9.9.9.2")
        index_study(world.bob.org, patient_id="P1", study_uid="1.2.3.1")
        events = sse.take(2)
    assert [(e.event, e.id) for e in events] == [("Patient", "1"), ("ImagingStudy", "2")]
    assert "9.9.9" not in "".join(e.data for e in events)


def test_it_filters_by_patient_and_study(server: live.Server, world: World) -> None:
    acme = world.bob.org
    index_study(acme, patient_id="P1", study_uid="1.2.3.1")
    index_study(acme, patient_id="P2", study_uid="1.2.3.2")
    with open_stream(server, world.bob.headers) as client:
        with connect(client, {"patient": "P2"}) as response:
            snapshot = SseClient(response).until("snapshot-end")
            assert sorted(e.event for e in snapshot[:-1]) == ["ImagingStudy", "Patient"]
            assert all(e.json["resourceType"] != "ImagingStudy" or e.json["id"] == "1.2.3.2" for e in snapshot[:-1])
        with connect(client, {"study": "1.2.3.1", "since": "0"}) as response:
            events = SseClient(response).take(1)
            assert [(e.event, e.id) for e in events] == [("ImagingStudy", "2")]


def test_it_echoes_x_record_id_and_refuses_a_bad_one(server: live.Server, world: World) -> None:
    record_id = str(uuid.uuid4())
    with open_stream(server, world.bob.headers, **{"X-Record-Id": record_id}) as client, connect(client) as response:
        assert response.headers["x-record-id"] == record_id
    bad = httpx.get(f"{server.url}/api/v2/records/stream", headers={**world.bob.headers, **SSE, "X-Record-Id": "nope"})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/problem+json"
