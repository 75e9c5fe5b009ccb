"""Where ingest's resources are read: the links its answers carry."""

from __future__ import annotations

from typing import Any

API = "/api/v2"


def upload_href(upload_id: object) -> str:
    """An upload's status (GET /api/v2/dicom/uploads/{request_id})."""
    return f"{API}/dicom/uploads/{upload_id}"


def upload_link(upload_id: object) -> dict[str, Any]:
    """An upload named in another answer (a stream's, a chunk's): its id and status link."""
    return {"request_id": str(upload_id), "links": {"status": {"href": upload_href(upload_id)}}}


def stream_href(stream_id: str) -> str:
    """A chunked stream's status (GET /api/v2/dicom/streams/{stream_id})."""
    return f"{API}/dicom/streams/{stream_id}"
