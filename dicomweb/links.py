"""Absolute links in stored DICOM JSON: indexing stores BulkDataURIs relative to the server
(``/api/v2/dicomweb/…``, studies/index/dicomweb_attributes.py); each answer joins them to its
request's base (core/links.py) with one replace over the JSON text, never a parse."""

from __future__ import annotations

_RELATIVE = '"BulkDataURI":"/'


def bulk_data_uris_absolute(metadata: str, base: str) -> str:
    """``metadata`` (compact DICOM JSON text) with every BulkDataURI prefixed by ``base``."""
    return metadata.replace(_RELATIVE, f'"BulkDataURI":"{base}/')
