"""`/ws/v2/dicom/stream`: the upload of `POST /dicom/stream` over one WebSocket (API.md §1).

The protocol, in order:
1. the client connects with `Authorization: Bearer <key>` (refused at the handshake: 401);
2. it sends a text frame `{"content_type": "...", "request_id": "<uuid4, optional>"}`;
3. it sends the payload as binary frames; each is answered with
   `{"type": "ack", "seq": n, "bytes": len, "sha256": "<hex of that frame>"}`;
4. it sends `{"type": "end"}`; the server answers `{"type": "received", ...}` — the same body
   as the HTTP 202, and the point from which the upload is durable and queued;
5. the server pushes `{"type": "progress", ...}` as indexing moves, and closes (1000) once the
   upload is `done` or `failed`.
A refusal is `{"type": "error", "problem": {...RFC 9457...}}`, then a close with code 4000 + the
HTTP status it would have had (4422 for a body that is not DICOM).

The bytes go through the same pipeline, limits and pacing as HTTP (studies/consumers.Ingest).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from core.asgi import Message, Receive, Scope, Send
from core.errors import ApiError, bad_request, not_found, too_large, unauthorized
from core.headers import parse_uuid4
from core.problems import problem_body, send_problem
from studies.ingest.body_pump import ClientGone
from studies.ingest.content_type import content_type_parse
from studies.ingest.pacing import pacer
from studies.ingest.refusals import answer_for, refusal
from studies.ingest.request_headers import UploadHeaders
from studies.ingest.selectors import upload_get
from studies.ingest.session import Ingest
from studies.models import UploadState

log = logging.getLogger("prizmed.ingest")
PROGRESS_POLL_SECONDS = 0.25
FINAL_STATES = (UploadState.DONE, UploadState.FAILED)


async def send_text_json(send: Send, body: dict[str, Any]) -> None:
    await send({"type": "websocket.send", "text": json.dumps(body)})


async def receive_json(receive: Receive) -> dict[str, Any]:
    message = await receive()
    if message["type"] == "websocket.disconnect":
        raise ClientGone()
    try:
        value = json.loads(message.get("text") or "")
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise bad_request("Expected a JSON object in a text frame.")
    return value


class WebSocketIngest(Ingest):
    """An Ingest whose body comes as binary frames, each acknowledged as it is taken."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, headers: UploadHeaders) -> None:
        super().__init__(scope, receive, headers)
        self.send = send

    def pieces(self, limit: int) -> AsyncIterator[bytes]:
        return self._frames(limit)

    async def _frames(self, limit: int) -> AsyncIterator[bytes]:
        seq = received = 0
        idle_s = settings.HTTP_BODY_IDLE_TIMEOUT_SECONDS
        while True:
            try:  # as for an HTTP body: a silent upload ends, its request id freed (docs/reliability.md)
                message = await asyncio.wait_for(self.receive(), idle_s)
            except TimeoutError:
                raise ApiError(408, f"No frame for {idle_s} s: the upload is dropped.", slug="body-timeout") from None
            if message["type"] == "websocket.disconnect":
                raise ClientGone()
            data: bytes | None = message.get("bytes")
            if data is None:
                if json.loads(message.get("text") or "null") == {"type": "end"}:
                    return
                raise bad_request('Between the header and {"type": "end"} only binary frames are allowed.')
            received += len(data)
            if received > limit:
                raise too_large(limit)
            yield data
            digest = await asyncio.to_thread(_sha256, data)  # up to 8 MiB: not on the event loop
            ack = {"type": "ack", "seq": seq, "bytes": len(data), "sha256": digest}
            await send_text_json(self.send, ack)
            seq += 1
            await pacer().pace(organization_id=self.organization.pk, bps=self.plan.bandwidth_bps, nbytes=len(data))


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def disconnected(receive: Receive) -> None:
    """Returns when the client leaves; frames it still sends after the upload are ignored."""
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def deny(send: Send, error: ApiError) -> None:
    """Refuse the handshake with an HTTP problem response (ASGI's websocket.http.response)."""

    async def as_websocket(message: Message) -> None:
        await send({**message, "type": f"websocket.{message['type']}"})

    await send_problem(as_websocket, error)


class DicomWebSocketConsumer:
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if scope.get("api_key") is None:
            if "websocket.http.response" in scope.get("extensions", {}):
                await deny(send, unauthorized())
            else:
                await send({"type": "websocket.close", "code": 1008})
            return
        await send({"type": "websocket.accept"})
        try:
            upload_id = await self.upload(scope, receive, send)
            await self.progress(scope, receive, send, upload_id)
        except ClientGone:
            log.info("WebSocket client left mid-upload; what it sent was removed")
            return
        except Exception as exc:  # noqa: BLE001 - answer_for logs what is not a refusal
            refused = answer_for(exc)
            await send_text_json(send, {"type": "error", "problem": problem_body(refused)})
            await send({"type": "websocket.close", "code": 4000 + refused.status})
            return
        await send({"type": "websocket.close", "code": 1000})

    async def upload(self, scope: Scope, receive: Receive, send: Send) -> str:
        header = await receive_json(receive)
        try:
            content_type = content_type_parse(str(header.get("content_type", "")))
        except ValueError as exc:
            raise refusal(exc) or exc from None
        given = header.get("request_id", scope["request_id"])
        parsed = parse_uuid4(given) if isinstance(given, str) else None
        if parsed is None:
            raise bad_request("request_id must be a UUID v4.")
        request_id = str(parsed)  # canonical form: storage keys and sweeps rebuild it from the row
        headers = UploadHeaders(content_type=content_type, content_length=None, chunk=None, sha256=None)
        ingest = WebSocketIngest(dict(scope, request_id=request_id), receive, send, headers)
        _, answer = await ingest.upload()
        await send_text_json(send, {"type": "received", **answer})
        return request_id

    async def progress(self, scope: Scope, receive: Receive, send: Send, upload_id: str) -> None:
        """Push the upload's indexing progress until it is final, or the client leaves."""
        organization = scope["api_key"].organization
        last: dict[str, Any] | None = None
        gone = asyncio.ensure_future(disconnected(receive))
        try:
            while True:
                upload = await database_sync_to_async(upload_get)(organization=organization, upload_id=upload_id)
                if upload is None:  # removed meanwhile (its organization was deleted)
                    raise not_found("The upload is gone.")
                now = {
                    "type": "progress",
                    "state": upload.state,
                    "instances_received": upload.instances_received,
                    "instances_indexed": upload.instances_indexed,
                    "instances_rejected": upload.instances_rejected,
                    "study_uids": upload.study_uids,
                }
                if now != last:
                    await send_text_json(send, now)
                    last = now
                if upload.state in FINAL_STATES:
                    return
                done, _ = await asyncio.wait([gone], timeout=PROGRESS_POLL_SECONDS)
                if done:
                    raise ClientGone()
        finally:
            gone.cancel()
