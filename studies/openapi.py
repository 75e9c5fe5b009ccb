"""OpenAPI path items of this app's Channels consumer routes (merged by prizmed/openapi.py)."""

from __future__ import annotations

from typing import Any

from studies.ingest_openapi import PATHS as INGEST_PATHS

PATHS: dict[str, dict[str, Any]] = {**INGEST_PATHS}
