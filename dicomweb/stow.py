"""STOW-RS (PS3.18 §10.5): `POST /studies[/{study}]` through the same streaming ingest as
`POST /dicom/stream` (studies/ingest: the Ingest session, its pacing, limits and request-id
idempotency), then the store response once the upload is indexed.

Indexing is asynchronous (Celery), so the request waits for the upload to leave `queued` /
`indexing`, up to DICOMWEB_STOW_WAIT_SECONDS; past that it answers 202 with a Warning and the
upload's status link (Location), and the instances go on being indexed.
"""

from __future__ import annotations

import asyncio
import logging
import time

from channels.db import database_sync_to_async
from django.conf import settings

from core.errors import ApiError, bad_request
from dicomweb.accept import accepts_json
from dicomweb.request import Request
from dicomweb.store_response import StoreOutcome, store_outcome
from records.growth import log_growth
from studies.ingest.body_pump import ClientGone
from studies.ingest.content_type import Kind
from studies.ingest.refusals import answer_for
from studies.ingest.request_headers import upload_headers
from studies.ingest.session import Ingest

log = logging.getLogger("prizmed.dicomweb")
_FIRST_POLL_S, _LAST_POLL_S = 0.005, 0.05  # a cheap indexed read; the answer waits on it


async def store(request: Request) -> None:
    """Store the instances of a multipart/related body (PS3.18 §10.5.1); answer the store
    response (PS3.18 §10.5.3) or, for a refused body, a problem."""
    if request.query():
        raise bad_request(f"Unknown query parameter {request.query()[0][0]!r}.", slug="bad-query-parameter")
    accepts_json(request.header(b"accept"))
    study_uid = request.uid("study")
    headers = upload_headers(request.scope)
    if headers.chunk is not None:
        raise bad_request("STOW-RS takes a whole body: chunked streams go to POST /api/v2/dicom/stream.")
    if headers.content_type.kind != Kind.MULTIPART:
        raise ApiError(415, 'STOW-RS takes multipart/related; type="application/dicom".', slug="unsupported-media-type")
    try:
        _, answer = await Ingest(request.scope, request.receive, headers).upload(required_study_uid=study_uid or "")
    except ClientGone:
        log.info("client disconnected mid-body; what it sent was removed")
        return
    except Exception as exc:  # noqa: BLE001 - answer_for logs what is not a refusal
        raise answer_for(exc) from None
    upload_id = answer["request_id"]
    status_href = answer["links"]["status"]["href"]
    outcome = await _indexed(request, upload_id)
    if outcome is None:
        wait = settings.DICOMWEB_STOW_WAIT_SECONDS
        warning = (
            f'299 - "The instances are stored; indexing them takes longer than the {wait} s this answer waits. '
            f'Follow the upload at {status_href}."'
        )
        headers_out = [(b"warning", warning.encode()), (b"location", status_href.encode())]
        await request.send_dicom_json(202, {}, headers_out)
        return
    await request.send_dicom_json(outcome.status, outcome.body, [(b"content-location", status_href.encode())])


async def _indexed(request: Request, upload_id: str) -> StoreOutcome | None:
    """The store response once the upload is indexed; None when the wait runs out first. Looks
    again as soon as the organization's record log grows (the commit of an indexing batch), and
    polls with backoff for what sends no wake-up (records/growth.py)."""
    deadline = time.monotonic() + settings.DICOMWEB_STOW_WAIT_SECONDS
    pause = _FIRST_POLL_S
    base = request.base()
    async with log_growth(request.organization.pk) as grown:
        while True:
            grown.clear()  # before looking: a commit while we look wakes the next wait
            outcome: StoreOutcome | None = await database_sync_to_async(store_outcome)(
                organization=request.organization, upload_id=upload_id, base=base, study_uid=request.params.get("study")
            )
            if outcome is not None or time.monotonic() >= deadline:
                return outcome
            try:
                async with asyncio.timeout(min(pause, max(0.0, deadline - time.monotonic()))):
                    await grown.wait()
                pause = _FIRST_POLL_S  # a batch committed: the upload's last may follow soon
            except TimeoutError:
                pause = min(pause * 2, _LAST_POLL_S)
