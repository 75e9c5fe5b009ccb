"""The headers of `POST /dicom/stream`, checked before a byte of the body is read (API.md §1)."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from core.asgi import Scope
from core.errors import bad_request, too_large
from core.headers import header
from core.params import integer
from studies.ingest.content_type import BadContentType, ContentType, UnsupportedMediaType, content_type_parse
from studies.ingest.refusals import refusal

# A request body over 4 GiB is refused on every plan; bigger payloads use chunked streams.
MAX_REQUEST_BYTES = 4 * 1024**3
MAX_SEQ = 99_999_999  # chunk object keys carry 8 digits
_STREAM_ID_RE = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_DIGEST_RE = re.compile(r"^\s*([A-Za-z0-9-]+)\s*=\s*:([A-Za-z0-9+/=]*):\s*$")


@dataclass(frozen=True, slots=True)
class ChunkHeaders:
    stream_id: str
    seq: int
    last: bool


@dataclass(frozen=True, slots=True)
class UploadHeaders:
    content_type: ContentType
    content_length: int | None
    chunk: ChunkHeaders | None
    sha256: bytes | None  # from Content-Digest, when it names sha-256


def upload_headers(scope: Scope) -> UploadHeaders:
    """Parse and check the headers; raise ApiError (400, 413, 415)."""
    try:
        content_type = content_type_parse(header(scope, b"content-type"))
    except (UnsupportedMediaType, BadContentType) as exc:
        refused = refusal(exc)
        assert refused is not None
        raise refused from None
    length = _content_length(header(scope, b"content-length"))
    if length is not None and length > MAX_REQUEST_BYTES:
        raise too_large(MAX_REQUEST_BYTES)
    return UploadHeaders(content_type, length, _chunk(scope), _sha256(header(scope, b"content-digest")))


def _content_length(value: str | None) -> int | None:
    if value is None:
        return None
    return integer(value, name="Content-Length", high=2**63 - 1)


def _chunk(scope: Scope) -> ChunkHeaders | None:
    stream_id, seq, last = (header(scope, name) for name in (b"x-stream-id", b"x-chunk-seq", b"x-chunk-last"))
    if stream_id is None:
        if seq is not None or last is not None:
            raise bad_request("X-Chunk-Seq and X-Chunk-Last need an X-Stream-Id.")
        return None
    if not _STREAM_ID_RE.fullmatch(stream_id):
        raise bad_request("X-Stream-Id must be 1-128 characters of A-Z a-z 0-9 . _ ~ : -.")
    if seq is None:
        raise bad_request(f"A chunk needs X-Chunk-Seq: a number from 0 to {MAX_SEQ}.")
    flag = (last or "false").strip().lower()
    if flag not in ("true", "false"):
        raise bad_request("X-Chunk-Last must be true or false.")
    return ChunkHeaders(stream_id, integer(seq, name="X-Chunk-Seq", high=MAX_SEQ), flag == "true")


def _sha256(value: str | None) -> bytes | None:
    """The sha-256 member of an RFC 9530 Content-Digest (a structured-field dictionary of byte
    sequences); other algorithms are ignored, as RFC 9530 §2 allows."""
    if value is None:
        return None
    for member in value.split(","):
        match = _DIGEST_RE.match(member)
        if match is None:
            raise bad_request("Content-Digest must look like sha-256=:<base64>:.")
        if match.group(1).lower() == "sha-256":
            try:
                digest = base64.b64decode(match.group(2), validate=True)
            except binascii.Error:
                digest = b""
            if len(digest) != 32:
                raise bad_request("Content-Digest sha-256 must be 32 bytes, base64-encoded.")
            return digest
    return None


def digest_check(expected: bytes | None, actual: bytes) -> None:
    if expected is not None and expected != actual:
        raise bad_request("The body does not match its Content-Digest.", slug="digest-mismatch")
