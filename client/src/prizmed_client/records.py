"""The record stream (API.md §6) as an iterator of FHIR resource events.

``GET /api/v2/records/stream`` with ``Accept: text/event-stream`` answers Server-Sent Events
(WHATWG HTML §9.2): the current resources first (no ``id:``), ``snapshot-end`` with the log
head as its id, then each change live with its sequence number as ``id:``. When the connection
drops (or the server ends it) the iterator reconnects after the server's ``retry:`` delay with
``Last-Event-ID`` set to the last id received, so it gets every later event and none twice
(docs/records.md "SSE and resume"). Idle connections carry ``: heartbeat`` comments every 3 s
(the server's default); the read timeout is far longer, so a silent connection is a dead one and
is reopened.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from prizmed_client.transport import ApiError, Transport

READ_TIMEOUT = 45.0  # fifteen of the server's default 3 s heartbeats (RECORDS_HEARTBEAT_SECONDS)
DEFAULT_RETRY = 2.0


@dataclass(frozen=True)
class RecordEvent:
    """One SSE event: ``event`` (``Patient``, ``ImagingStudy``, ``deleted``, ``snapshot-end``,
    ``reset``), ``seq`` (its ``id:``; None for snapshot resources) and the decoded ``data``."""

    event: str
    seq: int | None
    data: dict[str, Any]

    @property
    def is_resource(self) -> bool:
        """True for a FHIR resource (or a deletion), false for stream bookkeeping."""
        return self.event not in ("snapshot-end", "reset", "message")


@dataclass(frozen=True)
class RecordQuery:
    """Which records: those of one ``patient`` (DICOM Patient ID) or ``study`` (Study Instance
    UID) when given, and only the changes after sequence number ``since`` when given."""

    since: int | None = None
    patient: str | None = None
    study: str | None = None

    def filters(self) -> dict[str, str]:
        """The ``patient`` and ``study`` query parameters that are set (the record stream sends
        ``since`` as ``Last-Event-ID``)."""
        return {k: v for k, v in (("patient", self.patient), ("study", self.study)) if v is not None}

    def params(self) -> dict[str, str]:
        """Every query parameter that is set, ``since`` first (the NDJSON export)."""
        return {**({} if self.since is None else {"since": str(self.since)}), **self.filters()}


@dataclass
class _Raw:
    event: str = "message"
    data: list[str] | None = None
    id: str | None = None


def parse_sse(
    lines: Iterable[str], on_retry: Callable[[float], None] | None = None
) -> Iterator[tuple[str, str | None, str]]:
    """(event, id, data) per dispatched event from the lines of an event stream (WHATWG §9.2.6).

    Comments (``:``) are skipped; ``retry:`` goes to ``on_retry`` in seconds; an event with no
    data is not dispatched.
    """
    raw = _Raw()
    for line in lines:
        if line == "":
            if raw.data is not None:
                yield raw.event, raw.id, "\n".join(raw.data)
            raw = _Raw()
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            raw.data = [*(raw.data or []), value]
        elif name == "event":
            raw.event = value
        elif name == "id" and "\0" not in value:
            raw.id = value
        elif name == "retry" and value.isdigit() and on_retry is not None:
            on_retry(int(value) / 1000)


class RecordStream:
    """Iterate record events, reconnecting forever (``follow``) or until the snapshot ends."""

    def __init__(
        self,
        transport: Transport,
        query: RecordQuery | None = None,
        *,
        follow: bool = True,
        read_timeout: float = READ_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.transport = transport
        self.follow = follow
        query = query or RecordQuery()
        self.last_id: str | None = None if query.since is None else str(query.since)
        self.params = query.filters()
        self.timeout = httpx.Timeout(10.0, read=read_timeout)
        self.retry = DEFAULT_RETRY
        self.reconnects = 0
        self._sleep = sleep

    def __iter__(self) -> Iterator[RecordEvent]:
        while True:
            try:
                for event in self._connection():
                    yield event
                    if event.event == "snapshot-end" and not self.follow:
                        return
            except (httpx.TransportError, httpx.StreamError):
                pass  # dropped, or silent past the read timeout: reconnect from the last id
            except ApiError as exc:
                if exc.status != 429:  # too many streams open for this key: wait, then again
                    raise
            self.reconnects += 1
            self._sleep(self.retry)

    def _connection(self) -> Iterator[RecordEvent]:
        headers = {"Accept": "text/event-stream"}
        if self.last_id is not None:
            headers["Last-Event-ID"] = self.last_id
        with self.transport.stream(
            "GET", "/records/stream", headers=headers, params=self.params, timeout=self.timeout
        ) as response:
            for event, seq, data in parse_sse(response.iter_lines(), self._set_retry):
                if seq is not None:
                    self.last_id = seq
                try:
                    payload = json.loads(data)
                except ValueError:
                    payload = {"text": data}
                yield RecordEvent(event, int(seq) if seq is not None and seq.isdigit() else None, payload)

    def _set_retry(self, seconds: float) -> None:
        self.retry = seconds


def describe(event: RecordEvent) -> str:
    """One line for a resource event: ``<seq> <event> <Type>/<id> <what it is about>``."""
    data = event.data
    seq = "-" if event.seq is None else str(event.seq)
    ref = f"{data.get('resourceType', event.event)}/{data.get('id', '?')}"
    subject = (data.get("subject") or {}).get("reference", "")
    if event.event == "deleted":  # the study's id, identifier and subject only
        ref, about = f"ImagingStudy/{data.get('id', '?')}", f"{subject} deleted"
    elif data.get("resourceType") == "Patient":
        name = (data.get("name") or [{}])[0]
        about = " ".join([str(name.get("family", "")), *name.get("given", [])]).strip()
    elif data.get("resourceType") == "ImagingStudy":
        about = f"{subject} series={data.get('numberOfSeries', 0)} instances={data.get('numberOfInstances', 0)}"
    else:
        about = ""
    return f"{seq:>6} {event.event:<12} {ref} {about}".rstrip()
