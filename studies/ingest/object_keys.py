"""The keys ingest stores objects under: ids and positions the server makes, never payload content."""

from __future__ import annotations


def upload_prefix(organization_id: int, upload_id: str) -> str:
    """Where an upload's instances live (the key scheme the indexer relies on)."""
    return f"uploads/{organization_id}/{upload_id}/"


def instance_key(prefix: str, position: int) -> str:
    """An upload's instance at ``position`` under its ``upload_prefix``."""
    return f"{prefix}{position:06d}.dcm"


def chunk_key(organization_id: int, stream_pk: int, seq: int) -> str:
    """A chunk of a stream, until the stream is assembled or gone."""
    return f"streams/{organization_id}/{stream_pk}/{seq:08d}.chunk"
