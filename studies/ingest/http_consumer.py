"""`POST /api/v2/dicom/stream`: a raw ASGI app, so the body is stored as it arrives (API.md §1).

Django's handler would spool the whole body before a view runs; here the body goes through an
``Ingest`` (studies/ingest/session.py) as its `http.request` messages arrive.
"""

from __future__ import annotations

import logging

from core.asgi import Receive, Scope, Send, send_json
from core.errors import method_not_allowed, unauthorized
from core.problems import send_problem
from studies.ingest.body_pump import ClientGone
from studies.ingest.refusals import answer_for
from studies.ingest.request_headers import upload_headers
from studies.ingest.session import Ingest

log = logging.getLogger("prizmed.ingest")


class DicomStreamConsumer:
    """The ASGI app behind `POST /api/v2/dicom/stream` (routed in prizmed/routing.py)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("api_key") is None:
            await send_problem(send, unauthorized())
            return
        if scope["method"] != "POST":
            await send_problem(send, method_not_allowed("POST"))
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
            await send_problem(send, answer_for(exc))
            return
        upload = body if "instances_accepted" in body else body.get("upload")
        extra = [(b"location", upload["links"]["status"]["href"].encode())] if upload else []
        await send_json(send, status, body, extra)
