"""OpenAPI for the routes DRF does not see: the Channels consumers (streaming upload, SSE).

Each app describes its consumer routes as OpenAPI path items in `<app>/openapi.py` (PATHS);
this post-processing hook merges them into the generated schema.
"""

from __future__ import annotations

from typing import Any

from dicomweb.openapi import PATHS as DICOMWEB_PATHS
from fhir_rest.openapi import PATHS as FHIR_PATHS
from records.openapi import PATHS as RECORD_PATHS
from studies.ingest.openapi import PATHS as STUDY_PATHS


def add_consumer_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    for path, item in {**STUDY_PATHS, **RECORD_PATHS, **DICOMWEB_PATHS, **FHIR_PATHS}.items():
        result["paths"].setdefault(path, {}).update(item)
    return result
