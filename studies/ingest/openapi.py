"""OpenAPI path item of `POST /api/v2/dicom/stream` (a Channels consumer DRF does not see)."""

from __future__ import annotations

from typing import Any

from core.openapi import header_parameter, problem_response_object
from studies.ingest.request_headers import MAX_SEQ


def _link(name: str, description: str) -> dict[str, Any]:
    href = {"type": "object", "properties": {"href": {"type": "string"}}, "required": ["href"]}
    return {"type": "object", "properties": {name: {**href, "description": description}}, "required": [name]}


# Both replies are closed (required members, nothing else), so a reply matches exactly one of them.
_UPLOAD = {
    "type": "object",
    "description": "An upload stored and queued for indexing (a whole payload, or a completed stream).",
    "properties": {
        "request_id": {"type": "string", "format": "uuid", "description": "The upload's id (= X-Request-Id)."},
        "state": {"type": "string", "enum": ["receiving", "queued", "indexing", "done", "failed"]},
        "bytes_received": {"type": "integer", "description": "Body bytes received, multipart framing included."},
        "sha256": {"type": "string", "description": "SHA-256 of the bytes stored: the instances, preambles zeroed."},
        "instances_accepted": {"type": "integer"},
        "links": _link("status", "GET it for the upload's progress."),
    },
    "required": ["request_id", "state", "bytes_received", "sha256", "instances_accepted", "links"],
    "additionalProperties": False,
}
_CHUNK = {
    "type": "object",
    "description": "One chunk of a resumable stream, durable; `upload` is set by the chunk that completed it.",
    "properties": {
        "request_id": {"type": "string", "format": "uuid"},
        "stream_id": {"type": "string"},
        "seq": {"type": "integer", "description": "X-Chunk-Seq of this chunk."},
        "bytes": {"type": "integer", "description": "This chunk's size."},
        "sha256": {"type": "string", "description": "SHA-256 of this chunk."},
        "stream_state": {
            "type": "string",
            "enum": ["open", "complete"],
            "description": (
                "complete once every chunk up to the last is held and the payload is assembled; open "
                "meanwhile (and when this answer stopped waiting for the assembly)."
            ),
        },
        "links": _link("stream", "GET it for the chunks held (to resume); DELETE aborts."),
        "upload": {
            "allOf": [{"$ref": "#/components/schemas/UploadAccepted"}],
            "nullable": True,
            "description": (
                "null until this chunk completed the stream; then the upload it became (still receiving "
                "when its assembly outlasted STREAMS_ASSEMBLY_WAIT_SECONDS: follow links.status)."
            ),
        },
    },
    "required": ["request_id", "stream_id", "seq", "bytes", "sha256", "stream_state", "links", "upload"],
    "additionalProperties": False,
}
COMPONENTS: dict[str, dict[str, Any]] = {"UploadAccepted": _UPLOAD, "ChunkAccepted": _CHUNK}


_BINARY = {"schema": {"type": "string", "format": "binary"}}

STREAM_POST: dict[str, Any] = {
    "operationId": "dicom_stream",
    "summary": "Upload DICOM: one instance, a multipart stream of many, or one chunk of a resumable stream",
    "description": (
        "The body is stored as it arrives (Content-Length or Transfer-Encoding: chunked), with its "
        "128-byte preambles zeroed, and paced to the plan's bandwidth. Without X-Stream-Id the body is "
        "a whole payload: 202 once stored and queued for indexing; X-Request-Id is the upload's id and "
        "replays the earlier 202 when sent again. With X-Stream-Id it is chunk X-Chunk-Seq of a "
        "resumable payload: durable before its 202; the chunk that completes the stream (all of "
        "0..last held) has a worker assemble the payload and its 202 carries the upload."
    ),
    "tags": ["dicom"],
    "parameters": [
        header_parameter(
            "X-Request-Id", "UUID v4; the upload's id and idempotency key.", {"type": "string", "format": "uuid"}
        ),
        header_parameter(
            "X-Stream-Id",
            "Client-chosen stream id (1-128 of A-Za-z0-9._~:-).",
            {"type": "string", "pattern": "^[A-Za-z0-9._~:-]{1,128}$"},
        ),
        header_parameter(
            "X-Chunk-Seq",
            "0-based chunk number; required with X-Stream-Id.",
            {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
        ),
        header_parameter(
            "X-Chunk-Last",
            "`true` on the stream's last chunk; `false` or absent otherwise (any case; anything else: 400).",
            {"type": "string", "enum": ["true", "false"]},
        ),
        header_parameter("Content-Digest", "RFC 9530, e.g. sha-256=:<base64>: (verified).", {"type": "string"}),
    ],
    "requestBody": {
        "required": True,
        "content": {
            "application/dicom": _BINARY,
            "application/octet-stream": _BINARY,
            "application/dicom+stream": {
                "schema": {"type": "string", "format": "binary"},
                "encoding": {},
            },
        },
        "description": (
            "application/dicom or application/octet-stream: one Part-10 instance. "
            "application/dicom+stream; boundary=...: instances framed like a STOW-RS multipart/related body."
        ),
    },
    "responses": {
        "202": {
            "description": "Stored: the upload (whole payload) or the chunk (stream).",
            "headers": {"Location": {"schema": {"type": "string"}, "description": "The upload's status."}},
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/UploadAccepted"},
                            {"$ref": "#/components/schemas/ChunkAccepted"},
                        ]
                    }
                }
            },
        },
        "400": problem_response_object("Bad header (X-Stream-Id, X-Chunk-Seq, boundary) or Content-Digest mismatch."),
        "401": problem_response_object("Missing, malformed, unknown, revoked or expired key."),
        "409": problem_response_object(
            "Request id in progress; chunk stored with other bytes; stream type or state differs."
        ),
        "413": problem_response_object(
            "Over 4 GiB, or over the plan's study size (refused before reading when declared)."
        ),
        "415": problem_response_object("Content-Type is not one of the three accepted (or a part is not DICOM)."),
        "422": problem_response_object("Not DICOM: refused from the first bytes that show it, nothing kept."),
        "429": problem_response_object("The organization's request rate limit is reached."),
    },
}

PATHS: dict[str, dict[str, Any]] = {"/api/v2/dicom/stream": {"post": STREAM_POST}}
