"""What a `POST /dicom/stream` body is, by its Content-Type (API.md §1): one Part-10 instance, or
many framed like a STOW-RS multipart body."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from dicom.multipart import MultipartError, boundary_from_content_type, content_type_parameter

SINGLE_TYPES = ("application/octet-stream", "application/dicom")
MULTIPART_TYPE = "application/dicom+stream"
# The STOW-RS type itself (PS3.18 §10.5.1.2): the same framing, with its root part's type named.
STOW_TYPE = "multipart/related"
STOW_PART_TYPE = "application/dicom"


class Kind(enum.Enum):
    SINGLE = "single"  # the body is one Part-10 instance
    MULTIPART = "multipart"  # the body frames many instances like STOW-RS


class UnsupportedMediaType(ValueError):
    """415: not a content type this endpoint takes; ``str(exc)`` is safe to show."""


class BadContentType(ValueError):
    """400: a supported media type with unusable parameters (the boundary)."""


@dataclass(frozen=True, slots=True)
class ContentType:
    kind: Kind
    value: str  # normalized: what Upload/Stream rows record and streams compare
    boundary: str | None = None


def content_type_parse(header: str | None) -> ContentType:
    """Classify a request's Content-Type header value (API.md §1)."""
    media = (header or "").partition(";")[0].strip().lower()
    if media in SINGLE_TYPES:
        return ContentType(Kind.SINGLE, media)
    if media == STOW_TYPE and [t.lower() for t in content_type_parameter(header or "", "type")] != [STOW_PART_TYPE]:
        raise UnsupportedMediaType(
            f'{STOW_TYPE} must have type="{STOW_PART_TYPE}": DICOM JSON or XML metadata with bulk data is not accepted.'
        )
    if media in (MULTIPART_TYPE, STOW_TYPE):
        try:
            boundary = boundary_from_content_type(header or "")
        except MultipartError as exc:
            raise BadContentType(str(exc)) from None
        quoted = boundary.replace("\\", "\\\\").replace('"', '\\"')
        part_type = f'; type="{STOW_PART_TYPE}"' if media == STOW_TYPE else ""
        return ContentType(Kind.MULTIPART, f'{media}{part_type}; boundary="{quoted}"', boundary)
    raise UnsupportedMediaType(
        "Content-Type must be application/dicom+stream; boundary=..., multipart/related; "
        'type="application/dicom"; boundary=..., application/dicom or application/octet-stream.'
    )
