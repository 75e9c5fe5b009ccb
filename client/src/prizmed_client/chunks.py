"""Chunked, resumable streams (API.md §1, docs/ingest.md "Chunked, resumable streams").

One file is cut into chunks of ``chunk_bytes`` (the last one shorter); chunk ``seq`` is sent as
its own ``POST /dicom/stream`` with ``X-Stream-Id``, ``X-Chunk-Seq``, ``X-Chunk-Last`` and
``Content-Digest: sha-256=:<base64>:`` (RFC 9530). Resending a chunk with the same bytes is a
no-op on the server, so every chunk request is retried freely. The chunk that completes the
stream is answered with the upload it became.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from base64 import b64encode
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prizmed_client.state import ResumeState, StreamRecord
from prizmed_client.transport import ApiError, Transport

PIECE = 1024 * 1024


def chunk_sizes(size: int, chunk: int) -> dict[int, int]:
    """``{seq: bytes}`` of a ``size``-byte payload cut in ``chunk``-byte chunks (at least one)."""
    count = max(1, math.ceil(size / chunk))
    return {seq: min(chunk, size - seq * chunk) for seq in range(count)}


def content_digest(data: bytes) -> str:
    """``Content-Digest`` field value for ``data`` (RFC 9530 §2: ``sha-256=:<base64>:``)."""
    return f"sha-256=:{b64encode(hashlib.sha256(data).digest()).decode()}:"


@dataclass
class StreamOutcome:
    """How a stream ended: its upload (the completing 202's ``upload``), a refusal
    (status, detail), or ``restart`` when the server holds other bytes under this stream id."""

    upload: dict[str, Any] | None = None
    refused: tuple[int, str] | None = None
    restart: bool = False


class ChunkedSender:
    """Sends the chunks of one file that the server does not hold, in order."""

    def __init__(self, transport: Transport, state: ResumeState, *, on_bytes: Callable[[int], None]) -> None:
        self.transport = transport
        self.state = state
        self.on_bytes = on_bytes

    def send(self, path: Path, size: int, record: StreamRecord, held: dict[int, int]) -> StreamOutcome:
        """Send the missing chunks (or, when all are held but the stream is not complete, the
        last one again, which makes the server assemble it). Raises ApiError on other errors."""
        sizes = chunk_sizes(size, record.chunk_bytes)
        last = max(sizes)
        missing = [seq for seq in sizes if seq not in held] or [last]
        upload: dict[str, Any] | None = None
        with path.open("rb") as fh:
            for seq in missing:
                fh.seek(seq * record.chunk_bytes)
                data = fh.read(sizes[seq])
                try:
                    answer = self._send_chunk(record.stream_id, seq, data, last=seq == last)
                except ApiError as exc:
                    if exc.status == 409:
                        return StreamOutcome(restart=True)
                    if exc.status in (413, 415, 422):
                        return StreamOutcome(refused=(exc.status, exc.detail))
                    raise
                upload = answer.get("upload") or upload
        if upload is None:  # another request completed it meanwhile: ask the stream
            upload = self.transport.get_json(f"/dicom/streams/{record.stream_id}").get("upload")
        if upload is None:
            raise ApiError(500, {"detail": f"stream {record.stream_id} did not complete"}, None)
        return StreamOutcome(upload=upload)

    def _send_chunk(self, stream_id: str, seq: int, data: bytes, *, last: bool) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        self.state.record_chunk(stream_id, seq, request_id)
        headers = {
            "Content-Type": "application/dicom",
            "Content-Length": str(len(data)),
            "X-Stream-Id": stream_id,
            "X-Chunk-Seq": str(seq),
            "X-Chunk-Last": "true" if last else "false",
            "Content-Digest": content_digest(data),
        }

        def body() -> Iterator[bytes]:
            view = memoryview(data)
            for start in range(0, len(data), PIECE):
                yield bytes(view[start : start + PIECE])

        response = self.transport.request(
            "POST", "/dicom/stream", headers=headers, body=body, request_id=request_id, on_bytes=self.on_bytes
        )
        answer: dict[str, Any] = response.json()
        return answer
