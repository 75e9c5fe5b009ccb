"""The record stream request: media type by Accept, filters, paging and resume headers (API.md §6).

Parsed once, from the raw ASGI scope, before anything is read from the database.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from core.asgi import Scope
from core.errors import ApiError, bad_request
from core.fhir import FHIR_JSON, FHIR_NDJSON
from core.headers import header, parse_uuid4
from core.links import base_from_scope
from core.params import integer, optional_integer
from dicom.header import MAX_VALUE_CHARS
from dicom.uid import uid_is_acceptable
from records.selectors import RecordFilter

SSE = "text/event-stream"
MEDIA_TYPES = (FHIR_JSON, FHIR_NDJSON, SSE)
ALIASES = {"application/json": FHIR_JSON, "application/ndjson": FHIR_NDJSON, "application/x-ndjson": FHIR_NDJSON}

DEFAULT_COUNT = 100
MAX_COUNT = 1000
MAX_SEQ = 2**63 - 1
SESSION_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")


@dataclass(frozen=True)
class StreamRequest:
    media_type: str
    flt: RecordFilter
    position: int | None  # resume after this sequence number (Last-Event-ID, X-Record-Seq, since)
    session_id: str | None  # X-Record-Stream
    record_id: str | None  # X-Record-Id, echoed
    count: int  # _count: Bundle page size
    cursor: int  # _cursor: Bundle paging position (a resource row id)
    base: str = ""  # scheme://host[:port] of the Bundle's links (core/links.py)


def negotiate(accept: str | None) -> str:
    """The best supported media type of an Accept header (RFC 9110 §12.5.1); none → Bundle."""
    if not accept or not accept.strip():
        return FHIR_JSON
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        kind, *params = (part.strip() for part in item.split(";"))
        kind = kind.lower()
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        chosen = ALIASES.get(kind, kind)
        if kind in ("*/*", "application/*"):
            chosen = FHIR_JSON
        if chosen in MEDIA_TYPES and (best is None or (quality, -position) > (best[0], -best[1])):
            best = (quality, position, chosen)
    if best is None:
        raise ApiError(406, f"Acceptable media types: {', '.join(MEDIA_TYPES)}.", slug="not-acceptable")
    return best[2]


def _query(scope: Scope) -> dict[str, str]:
    try:
        pairs = parse_qsl(scope.get("query_string", b"").decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise bad_request("The query string is not UTF-8.") from None
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            raise bad_request(f"Parameter {name} is given twice.")
        query[name] = value
    return query


def stream_request_parse(scope: Scope) -> StreamRequest:
    """The request, checked; raises ApiError (400, 406)."""
    query = _query(scope)
    patient, study = query.get("patient"), query.get("study")
    if patient is not None and not 0 < len(patient) <= MAX_VALUE_CHARS:
        raise bad_request(f"patient must be a DICOM Patient ID (1 to {MAX_VALUE_CHARS} characters).")
    if study is not None and not uid_is_acceptable(study):
        raise bad_request("study must be a Study Instance UID (digits and dots, at most 64 characters).")

    record_id = header(scope, b"x-record-id")
    if record_id is not None and parse_uuid4(record_id) is None:
        raise bad_request("X-Record-Id must be a UUID v4.")
    session_id = header(scope, b"x-record-stream")
    if session_id is not None and not SESSION_ID.fullmatch(session_id):
        raise bad_request("X-Record-Stream must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ : -")

    # The browser's own resume header wins, then the explicit one, then the query parameter.
    position = None
    for name, value in (
        ("Last-Event-ID", header(scope, b"last-event-id")),
        ("X-Record-Seq", header(scope, b"x-record-seq")),
        ("since", query.get("since")),
    ):
        if value is not None:
            parsed = integer(value, name=name, high=MAX_SEQ)
            position = parsed if position is None else position

    return StreamRequest(
        media_type=negotiate(header(scope, b"accept")),
        flt=RecordFilter(patient=patient, study=study),
        position=position,
        session_id=session_id,
        record_id=record_id,
        count=optional_integer(query.get("_count"), name="_count", default=DEFAULT_COUNT, low=1, high=MAX_COUNT),
        cursor=optional_integer(query.get("_cursor"), name="_cursor", default=0, high=MAX_SEQ),
        base=base_from_scope(scope),
    )
