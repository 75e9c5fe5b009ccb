"""The record stream iterator: SSE parsing (WHATWG HTML §9.2.6) and reconnecting with Last-Event-ID."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
from prizmed_client.config import Settings
from prizmed_client.records import RecordStream, describe, parse_sse
from prizmed_client.transport import Transport


def test_it_parses_events_comments_retry_and_multiline_data() -> None:
    lines = ["retry: 1500", ": heartbeat", "event: Patient", 'data: {"a":', "data: 1}", "", "id: 7", "event: x", "", ""]
    retries: list[float] = []
    assert list(parse_sse(lines, retries.append)) == [("Patient", None, '{"a":\n1}')]
    assert retries == [1.5]


def sse(*events: tuple[str, int | None, dict[str, Any]]) -> bytes:
    out = []
    for event, seq, data in events:
        out.append(f"event: {event}\n" + (f"id: {seq}\n" if seq is not None else "") + f"data: {json.dumps(data)}\n\n")
    return "".join(out).encode()


STUDY = {"resourceType": "ImagingStudy", "id": "1.2.3", "subject": {"reference": "Patient/ab"}, "numberOfSeries": 1,
         "numberOfInstances": 2}  # fmt: skip
PATIENT = {"resourceType": "Patient", "id": "ab", "name": [{"family": "Doe", "given": ["Jane"]}]}


def test_it_reconnects_after_a_drop_with_the_last_event_id(tmp_path: Path) -> None:
    requests: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        if len(requests) == 1:  # the snapshot, one live event, then the connection drops
            body = sse(("Patient", None, PATIENT), ("snapshot-end", 4, {}), ("ImagingStudy", 5, STUDY))
            return httpx.Response(200, headers={"Content-Type": "text/event-stream"}, stream=Dropping(body))
        if len(requests) == 2:  # too many streams open for the key: wait and again
            return httpx.Response(429, headers={"Retry-After": "0"}, json={"title": "Too Many Requests"})
        return httpx.Response(
            200,
            headers={"Content-Type": "text/event-stream"},
            content=sse(("deleted", 6, {**STUDY, "numberOfSeries": 0})),
        )

    settings = Settings(url="http://x.test", api_key="pzm_k", state_dir=tmp_path)
    transport = Transport(settings, http=httpx.Client(transport=httpx.MockTransport(server)), sleep=lambda s: None)
    stream = RecordStream(transport, sleep=lambda s: None)
    events = []
    for event in stream:
        events.append(event)
        if event.event == "deleted":
            break

    assert [(e.event, e.seq) for e in events] == [
        ("Patient", None),
        ("snapshot-end", 4),
        ("ImagingStudy", 5),
        ("deleted", 6),
    ]
    assert "last-event-id" not in requests[0].headers
    assert requests[-1].headers["last-event-id"] == "5" and requests[-1].headers["accept"] == "text/event-stream"
    assert describe(events[0]) == "     - Patient      Patient/ab Doe Jane"
    assert describe(events[2]) == "     5 ImagingStudy ImagingStudy/1.2.3 Patient/ab series=1 instances=2"
    assert describe(events[3]) == "     6 deleted      ImagingStudy/1.2.3 Patient/ab deleted"


class Dropping(httpx.SyncByteStream):
    """A body that breaks off after its bytes, like a connection reset."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self):
        yield self.data
        raise httpx.ReadError("connection reset by peer")
