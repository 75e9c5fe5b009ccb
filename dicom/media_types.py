"""Media types of DICOM content in DICOMweb (PS3.18 §8.7.3, Tables 8.7.3-2, 8.7.3-5 and 8.7.3-6).

A frame or a bulk data value is served as stored: uncompressed data as
``application/octet-stream``, compressed pixel data in the media type of its transfer syntax
(``image/jpeg`` for the JPEG family, ``image/jp2`` for JPEG 2000, ...). PrizMed does not
transcode, so the transfer syntax of an answer is always the stored one.
"""

from __future__ import annotations

EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
OCTET_STREAM = "application/octet-stream"

# PS3.18 Table 8.7.3-5 (single frame and multi-frame image media types), as stored.
_PIXEL_MEDIA_TYPES = {
    "1.2.840.10008.1.2.5": "image/dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.4.100": "video/mpeg2",
    "1.2.840.10008.1.2.4.101": "video/mpeg2",
    "1.2.840.10008.1.2.4.102": "video/mp4",
    "1.2.840.10008.1.2.4.103": "video/mp4",
    "1.2.840.10008.1.2.4.104": "video/mp4",
    "1.2.840.10008.1.2.4.105": "video/mp4",
    "1.2.840.10008.1.2.4.106": "video/mp4",
    "1.2.840.10008.1.2.4.107": "video/H265",
    "1.2.840.10008.1.2.4.108": "video/H265",
}


def pixel_media_type(transfer_syntax_uid: str, *, encapsulated: bool) -> str:
    """The media type of a frame (or of pixel bulk data) stored in ``transfer_syntax_uid``:
    ``application/octet-stream`` for native (uncompressed) pixel data, else the compressed
    type of PS3.18 Table 8.7.3-5; an unknown encapsulated syntax is octet-stream too."""
    if not encapsulated:
        return OCTET_STREAM
    return _PIXEL_MEDIA_TYPES.get(transfer_syntax_uid, OCTET_STREAM)
