"""Why an upload is refused, as an HTTP status (API.md, Common headers and errors)."""

from __future__ import annotations

import logging

from dicom.multipart import MultipartError
from dicom.part10 import NotDicom
from studies.ingest.content_type import BadContentType, UnsupportedMediaType

log = logging.getLogger("prizmed.ingest")


class Refused(Exception):
    """An upload or chunk the server will not take; ``detail`` is safe to show the client."""

    def __init__(self, status: int, detail: str, *, slug: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug


def refusal(exc: Exception) -> Refused | None:
    """The refusal a pipeline exception stands for; None for a real failure (a bug, a disk)."""
    if isinstance(exc, Refused):
        return exc
    if isinstance(exc, NotDicom):
        return Refused(422, f"The body is not valid DICOM: {exc}.", slug="not-dicom")
    if isinstance(exc, MultipartError):
        return Refused(422, f"The multipart body is malformed: {exc}.", slug="bad-multipart")
    if isinstance(exc, UnsupportedMediaType):
        return Refused(415, str(exc), slug="unsupported-media-type")
    if isinstance(exc, BadContentType):
        return Refused(400, f"Bad Content-Type: {exc}.", slug="bad-content-type")
    return None


def answer_for(exc: Exception) -> Refused:
    """What to tell the client about a failed upload: its refusal, or a 500 for a real failure
    (logged here with its traceback, never shown)."""
    refused = refusal(exc)
    if refused is None:
        log.error("upload failed", exc_info=exc)
        refused = Refused(500, "The server failed to handle this upload.", slug="internal-error")
    return refused


def too_large(limit: int) -> Refused:
    return Refused(413, f"The payload exceeds {limit} bytes, the most this request may carry.", slug="too-large")


def conflict(detail: str) -> Refused:
    return Refused(409, detail, slug="conflict")


def bad_request(detail: str) -> Refused:
    return Refused(400, detail, slug="bad-request")
