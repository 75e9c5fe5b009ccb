"""Why an upload is refused, as the API error the client gets (API.md, Common headers and errors)."""

from __future__ import annotations

import errno
import logging

from core.errors import ApiError, server_failure
from dicom.multipart import MultipartError
from dicom.part10 import NotDicom
from studies.ingest.content_type import BadContentType, UnsupportedMediaType

log = logging.getLogger("prizmed.ingest")


def refusal(exc: Exception) -> ApiError | None:
    """The refusal a pipeline exception stands for; None for a real failure (a bug, a disk)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, NotDicom):
        return ApiError(422, f"The body is not valid DICOM: {exc}.", slug="not-dicom")
    if isinstance(exc, MultipartError):
        return ApiError(422, f"The multipart body is malformed: {exc}.", slug="bad-multipart")
    if isinstance(exc, UnsupportedMediaType):
        return ApiError(415, str(exc), slug="unsupported-media-type")
    if isinstance(exc, BadContentType):
        return ApiError(400, f"Bad Content-Type: {exc}.", slug="bad-content-type")
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        # Storage full (RFC 4918 §11.5): not the client's fault and not a bug; what this
        # request wrote is removed by its caller as for any refusal.
        return ApiError(507, "The server's storage is full; nothing of this upload was kept.", slug="storage-full")
    return None


def answer_for(exc: Exception) -> ApiError:
    """What to tell the client about a failed upload: its refusal, or a 500 for a real failure
    (logged here with its traceback, never shown)."""
    refused = refusal(exc)
    if refused is None:
        log.error("upload failed", exc_info=exc)
        refused = server_failure("The server failed to handle this upload.", slug="internal-error")
    return refused
