"""OpenAPI path items of this app's Channels consumer routes (merged by prizmed/openapi.py)."""

from __future__ import annotations

from typing import Any

from core.openapi import UUID4_SCHEMA, header_parameter, problem_response_object, query_parameter
from dicom.header import MAX_VALUE_CHARS
from dicom.uid import UID_SCHEMA
from records.request import DEFAULT_COUNT, MAX_COUNT, MAX_SEQ, SESSION_ID

_SEQ = {"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "format": "int64"}
_RESOURCE = {
    "type": "object",
    "description": "A FHIR R4 Patient or ImagingStudy (with series, instances and a contained Endpoint).",
    "properties": {"resourceType": {"type": "string", "enum": ["Patient", "ImagingStudy"]}},
}
_BUNDLE = {
    "type": "object",
    "description": "A FHIR R4 searchset Bundle; `link` has `self` and, when more follow, `next`.",
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string", "enum": ["searchset"]},
        "total": {"type": "integer"},
        "link": {"type": "array", "items": {"type": "object"}},
        "entry": {"type": "array", "items": {"type": "object", "properties": {"resource": _RESOURCE}}},
    },
}
_SEQ_HEADER = {"description": "The log head when the answer was read: resume live from here.", "schema": _SEQ}

RECORDS_STREAM_GET: dict[str, Any] = {
    "operationId": "records_stream",
    "summary": "The organization's FHIR records: a Bundle, an NDJSON export, or a live SSE stream",
    "description": (
        "Chosen by Accept. `application/fhir+json`: a searchset Bundle page of the current Patient and "
        "ImagingStudy resources (`_count`, `next` link). `application/fhir+ndjson`: every current resource, "
        "one per line, streamed. `text/event-stream`: Server-Sent Events; without a position the current "
        "resources come first (events without `id`), then `snapshot-end` whose `id` is the log head; then "
        "every change: `event:` Patient, ImagingStudy or `deleted`, `id:` its sequence number, `data:` the "
        "resource. A position (Last-Event-ID, X-Record-Seq or `since`) resumes with exactly the events "
        "after it; one older than the retained log gets `event: reset`, then the snapshot again. "
        "Heartbeat comments keep idle connections open. A key revoked or expired meanwhile ends the stream "
        "with `event: access-ended` (data: the 401 problem). See docs/records.md."
    ),
    "tags": ["records"],
    "parameters": [
        query_parameter(
            "patient",
            "Only this DICOM Patient ID (its Patient and its studies).",
            {"type": "string", "minLength": 1, "maxLength": MAX_VALUE_CHARS},
        ),
        query_parameter("study", "Only this Study Instance UID.", UID_SCHEMA),
        query_parameter("since", "Sequence number: only changes after it (SSE: resume after it).", _SEQ),
        query_parameter(
            "_count",
            f"Bundle page size, 1-{MAX_COUNT} (default {DEFAULT_COUNT}).",
            {"type": "integer", "minimum": 1, "maximum": MAX_COUNT},
        ),
        query_parameter("_cursor", "Bundle paging position, taken from a `next` link.", _SEQ),
        header_parameter("X-Record-Id", "UUID v4 naming this request; echoed.", UUID4_SCHEMA),
        header_parameter(
            "X-Record-Stream",
            "Session id (1-128 of A-Za-z0-9._~:-): the server remembers the last event sent on it, and a "
            "reconnect naming it continues from there.",
            {"type": "string", "pattern": f"^{SESSION_ID.pattern}$"},
        ),
        header_parameter("X-Record-Seq", "Resume after this sequence number.", _SEQ),
        header_parameter("Last-Event-ID", "Resume after this sequence number (sent by EventSource).", _SEQ),
    ],
    "responses": {
        "200": {
            "description": "The records in the negotiated media type.",
            "headers": {"X-Record-Seq": _SEQ_HEADER},
            "content": {
                "application/fhir+json": {"schema": _BUNDLE},
                "application/fhir+ndjson": {"schema": {"type": "string", "description": "One resource per line."}},
                "text/event-stream": {"schema": {"type": "string", "description": "Server-Sent Events."}},
            },
        },
        "400": problem_response_object("A malformed header or parameter."),
        "401": problem_response_object("Missing, malformed, unknown, revoked or expired API key."),
        "406": problem_response_object("None of the three media types is acceptable."),
        "429": problem_response_object(
            "The organization's rate limit, or the key's concurrent stream cap, is reached."
        ),
    },
}

PATHS: dict[str, dict[str, Any]] = {"/api/v2/records/stream": {"get": RECORDS_STREAM_GET}}
