"""`POST /api/v2/dicom/stream`: a raw ASGI app, so the body is stored as it arrives (API.md §1).

Django's handler would spool the whole body before a view runs; here the body goes through an
``Ingest`` (studies/ingest/session.py) as its `http.request` messages arrive.
"""

from __future__ import annotations

import logging
from typing import Any

from core.asgi import Receive, Send, send_json
from core.problems import send_problem, send_unauthorized
from studies.ingest.body_pump import ClientGone
from studies.ingest.refusals import answer_for
from studies.ingest.request_headers import upload_headers
from studies.ingest.session import Ingest

log = logging.getLogger("prizmed.ingest")


class DicomStreamConsumer:
    """The ASGI app behind `POST /api/v2/dicom/stream` (routed in prizmed/routing.py)."""

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope.get("api_key") is None:
            await send_unauthorized(send)
            return
        if scope["method"] != "POST":
            await send_problem(send, 405, "Only POST is allowed here.", headers=[(b"allow", b"POST")])
            return
        try:
            headers = upload_headers(scope)
            ingest = Ingest(scope, receive, headers)
            if headers.chunk is None:
                status, body = await ingest.upload()
            else:
                status, body = await ingest.chunk(headers.chunk)
        except ClientGone:
            log.info("client disconnected mid-body; what it sent was removed")
            return
        except Exception as exc:  # noqa: BLE001 - answer_for logs what is not a refusal
            refused = answer_for(exc)
            await send_problem(send, refused.status, refused.detail, slug=refused.slug)
            return
        upload = body if "instances_accepted" in body else body.get("upload")
        extra = [(b"location", upload["links"]["status"]["href"].encode())] if upload else []
        await send_json(send, status, body, extra)
