"""Record stream test helpers: index rows written with the ORM (as the indexer would, with its
record events in the same transaction), an SSE reader over httpx, and FHIR validation."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dtime
from typing import Any

import httpx
from django.db import transaction

from accounts.models import Organization
from studies.index.record_events import record_patient_changed, record_study_changed, record_study_deleted
from studies.models import Instance, Patient, Series, Study
from tests.support import live
from tests.support.fhir_assert import assert_fhir_valid

RESOURCE_EVENTS = ("Patient", "ImagingStudy", "deleted")  # SSE events whose data is a FHIR resource
STREAM_PATH = "/api/v2/records/stream"
READ_TIMEOUT = 20.0  # seconds without a byte before a test read gives up (heartbeats come faster)


def index_study(
    org: Organization,
    *,
    patient_id: str = "P1",
    study_uid: str = "1.2.3.1",
    name: str = "Doe^Jane",
    series: int = 1,
    instances: int = 2,
    modality: str = "CT",
) -> Study:
    """Patient, study, series and instances rows, and their Patient and ImagingStudy events."""
    with transaction.atomic():
        patient, created = Patient.objects.get_or_create(
            organization=org,
            patient_id=patient_id,
            defaults={"name": name, "birth_date": date(1980, 1, 2), "sex": "F"},
        )
        if created:
            record_patient_changed(patient=patient)
        study = Study.objects.create(
            organization=org, patient=patient, study_uid=study_uid, study_date=date(2024, 1, 2),
            study_time=dtime(10, 11, 12), accession_number="ACC1", description="Chest CT", modalities=[modality],
            series_count=series, instance_count=series * instances, bytes=series * instances * 10,
        )  # fmt: skip
        for s in range(1, series + 1):
            row = Series.objects.create(
                study=study, series_uid=f"{study_uid}.{s}", number=s, modality=modality, description="axial",
                body_part="CHEST", instance_count=instances, bytes=instances * 10,
            )  # fmt: skip
            Instance.objects.bulk_create(
                Instance(organization=org, series=row, sop_uid=f"{study_uid}.{s}.{i}", number=i,
                         sop_class_uid="1.2.840.10008.5.1.4.1.1.2", transfer_syntax_uid="1.2.840.10008.1.2.1",
                         object_key=f"k/{study_uid}/{s}/{i}", size=10, sha256="0" * 64)
                for i in range(1, instances + 1)
            )  # fmt: skip
        record_study_changed(study=study)
    return study


def rename_patient(org: Organization, patient_id: str, name: str) -> None:
    with transaction.atomic():
        patient = Patient.objects.select_for_update().get(organization=org, patient_id=patient_id)
        patient.name = name
        patient.save()
        record_patient_changed(patient=patient)


def delete_study(org: Organization, study_uid: str) -> None:
    with transaction.atomic():
        study = Study.objects.select_related("patient").get(organization=org, study_uid=study_uid)
        patient_id = study.patient.patient_id
        study.delete()
        record_study_deleted(organization_id=org.pk, study_uid=study_uid, patient_id=patient_id)


def validate(resource: dict[str, Any]) -> Any:
    """The resource parsed by the fhir.resources R4B model of its type (raises if invalid): the
    tests' one check, tests/support/fhir_assert.py."""
    return assert_fhir_valid(resource)


@dataclass
class SseEvent:
    event: str
    data: str
    id: str | None

    @property
    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseClient:
    """Reads one SSE response line by line (WHATWG HTML §9.2.6), comments kept apart."""

    response: httpx.Response
    lines: Iterator[str] = field(init=False)
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    def __post_init__(self) -> None:
        self.lines = self.response.iter_lines()

    def next(self, within_s: float = 60) -> SseEvent:
        """The next event. Heartbeats keep the read alive, so a missing event would otherwise
        hang the test: after ``within_s`` seconds it fails instead (AssertionError)."""
        deadline = time.monotonic() + within_s
        event, last_id = "message", None
        data: list[str] = []
        for line in self.lines:
            assert time.monotonic() < deadline, f"no event within {within_s} s (comments: {self.comments[-3:]})"
            if line == "":
                if data:
                    if event in RESOURCE_EVENTS:  # every resource the stream sends validates
                        assert_fhir_valid(json.loads("\n".join(data)))
                    return SseEvent(event, "\n".join(data), last_id)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "":
                self.comments.append(value)
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                last_id = value
            elif name == "retry":
                self.retry = int(value)
        raise EOFError("the stream ended")

    def next_comment(self) -> str:
        for line in self.lines:
            if line.startswith(":"):
                return line[1:].strip()
        raise EOFError("the stream ended")

    def until(self, event: str) -> list[SseEvent]:
        """Every event up to and including the next one of this type."""
        seen = []
        while True:
            seen.append(self.next())
            if seen[-1].event == event:
                return seen

    def take(self, count: int) -> list[SseEvent]:
        return [self.next() for _ in range(count)]


def stream_timeout() -> httpx.Timeout:
    return httpx.Timeout(10.0, read=READ_TIMEOUT)


def wait_for(condition: Any, *, timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until condition() is truthy (bounded), returning its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")


class Listener:
    """One SSE client on its own thread: the ids it receives, across reconnects (each resumes
    with Last-Event-ID after the last id it got)."""

    def __init__(self, srv: live.Server, headers: dict[str, str], *, position: int, last: int, **params: str) -> None:
        self.srv, self.headers, self.position, self.last, self.params = srv, headers, position, last, params
        self.ids: list[int] = []
        self.connected = threading.Event()

    def read(self, *, reconnect_after: int | None = None, pause: float = 0.0, rcvbuf: int | None = None) -> list[int]:
        options = [(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)] if rcvbuf else []
        transport = httpx.HTTPTransport(socket_options=options)
        with httpx.Client(base_url=self.srv.url, timeout=stream_timeout(), transport=transport) as client:
            while not self.ids or self.ids[-1] < self.last:
                position = self.ids[-1] if self.ids else self.position
                headers = {**self.headers, "Accept": "text/event-stream", "Last-Event-ID": str(position)}
                with client.stream("GET", STREAM_PATH, headers=headers, params=self.params) as response:
                    assert response.status_code == 200
                    self.connected.set()  # the stream has joined its process's reader
                    reader = SseClient(response)
                    while not self.ids or self.ids[-1] < self.last:
                        self.ids.append(int(reader.next().id or 0))
                        if pause:
                            time.sleep(pause)
                        if reconnect_after is not None and len(self.ids) == reconnect_after:
                            break  # drops the connection mid-burst, then resumes after what it got
        return self.ids


def reader_stats(srv: live.Server, organization_id: int) -> dict[str, int] | None:
    """What the server's log reader of the organization logged when its last stream left
    (records/fanout.py), once it has."""
    for line in srv.log().splitlines():
        if '"records log reader stopped"' in line:
            entry = json.loads(line)
            if entry["organization_id"] == organization_id:
                return entry  # type: ignore[no-any-return]
    return None
