"""What a DICOMweb client accepts (PS3.18 §8.7, RFC 9110 §12.5.1): the media types and transfer
syntax of an answer, chosen from the request's Accept header; 406 when nothing fits.

PrizMed serves instances, frames and bulk data as stored (it does not transcode): a request is
served when it accepts the stored form — ``transfer-syntax=*``, the stored transfer syntax, or
no transfer-syntax parameter (which PS3.18 reads as Explicit VR Little Endian; PrizMed, like
Orthanc, answers it as stored) — and refused with 406 when it names another one.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import ApiError
from dicom.media_types import DICOM, DICOM_JSON
from dicom.multipart import content_type_parameter

MULTIPART = "multipart/related"


@dataclass(frozen=True, slots=True)
class MediaRange:
    """One element of an Accept header: ``type/subtype``, its ``type`` parameter for
    multipart/related (the type of the parts), its transfer syntax, and its weight."""

    media: str
    part_type: str | None
    transfer_syntax: str | None
    q: float


def not_acceptable(detail: str) -> ApiError:
    return ApiError(406, detail, slug="not-acceptable")


def media_ranges(accept: str | None) -> list[MediaRange]:
    """The Accept header's ranges with q > 0, in the client's order; ``*/*`` when absent."""
    if accept is None or not accept.strip():
        return [MediaRange("*/*", None, None, 1.0)]
    ranges = []
    for element in _split(accept):
        media = element.partition(";")[0].strip().lower()
        if not media:
            continue
        weights = content_type_parameter(element, "q")
        try:
            q = float(weights[0]) if weights else 1.0
        except ValueError:
            q = 1.0
        if q <= 0:
            continue
        part_types = content_type_parameter(element, "type")
        syntaxes = content_type_parameter(element, "transfer-syntax")
        ranges.append(
            MediaRange(media, part_types[0].lower() if part_types else None, syntaxes[0] if syntaxes else None, q)
        )
    return sorted(ranges, key=lambda r: -r.q)


def _split(accept: str) -> list[str]:
    """Split on commas outside quoted strings (a quoted ``type`` may not hold one, but be safe)."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in accept:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _matches(pattern: str, media: str) -> bool:
    if pattern in ("*/*", media):
        return True
    major, _, minor = pattern.partition("/")
    return minor in ("*", "") and media.startswith(major + "/")


def accepts_json(accept: str | None) -> None:
    """QIDO-RS, metadata and the STOW-RS answer are DICOM JSON (PS3.18 Annex F); raise 406
    unless the client takes ``application/dicom+json`` (or ``application/json``, or any)."""
    for r in media_ranges(accept):
        if _matches(r.media, DICOM_JSON) or r.media == "application/json":
            return
    raise not_acceptable("This resource is served as application/dicom+json only.")


@dataclass(frozen=True, slots=True)
class DicomChoice:
    multipart: bool  # multipart/related; type="application/dicom", else a bare application/dicom body
    transfer_syntax: str | None  # a specific one the client asked for; None: as stored


def accepts_dicom(accept: str | None, *, single_allowed: bool) -> DicomChoice:
    """Study, series and instance retrieval (PS3.18 §10.4.1.1.1): multipart/related of
    application/dicom parts; a single instance may also be a bare application/dicom body.
    Raises 406 for anything else."""
    for r in media_ranges(accept):
        syntax = None if r.transfer_syntax in (None, "*") else r.transfer_syntax
        if r.media == MULTIPART and r.part_type in (None, DICOM):
            return DicomChoice(True, syntax)
        if r.media == DICOM and single_allowed:
            return DicomChoice(False, syntax)
        if r.media in ("*/*", "multipart/*"):
            return DicomChoice(True, None)
    raise not_acceptable('This resource is served as multipart/related; type="application/dicom".')


def accepts_pixels(accept: str | None, *, stored_media: str, stored_syntax: str) -> None:
    """Frames and bulk data (PS3.18 §10.4.1.1.3): multipart/related of parts in the stored
    media type; raise 406 when the client takes neither that type nor the stored syntax."""
    for r in media_ranges(accept):
        if r.transfer_syntax not in (None, "*", stored_syntax):
            continue
        if r.media == MULTIPART and (r.part_type is None or _matches(r.part_type, stored_media)):
            return
        if r.media in ("*/*", "multipart/*"):
            return
    raise not_acceptable(
        f"These bytes are stored as {stored_media} (transfer syntax {stored_syntax}); ask for multipart/related; "
        f'type="{stored_media}" or transfer-syntax=*: PrizMed does not transcode.'
    )


def accepts_image(accept: str | None) -> str:
    """Rendered resources and thumbnails (PS3.18 §10.4.1.1.4, §10.4.1.1.5): image/jpeg (the
    default) or image/png; raise 406 for anything else."""
    for r in media_ranges(accept):
        for media in ("image/jpeg", "image/png"):
            if _matches(r.media, media):
                return media
    raise not_acceptable("Rendered images are served as image/jpeg or image/png.")
