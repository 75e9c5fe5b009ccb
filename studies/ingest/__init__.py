"""Ingest: DICOM arriving over HTTP (whole or in resumable chunks) and WebSocket, stored as it
arrives, one object per instance, then queued for indexing (API.md §1, docs/ingest.md)."""
