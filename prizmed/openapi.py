"""OpenAPI for the routes DRF does not see (the Channels consumers, DICOMweb), and the rules that
complete every operation (core/openapi.py: security, X-Request-Id, problem+json refusals).

Each app describes its consumer routes as OpenAPI path items in `<app>/openapi.py` (PATHS);
this post-processing hook merges them into the generated schema.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from core.openapi import operations_complete
from dicomweb.openapi import PATHS as DICOMWEB_PATHS
from fhir_rest.openapi import PATHS as FHIR_PATHS
from records.openapi import PATHS as RECORD_PATHS
from studies.ingest.openapi import COMPONENTS as STUDY_COMPONENTS
from studies.ingest.openapi import PATHS as STUDY_PATHS


def add_consumer_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    drf_paths = set(result["paths"])
    for path, item in {**STUDY_PATHS, **RECORD_PATHS, **DICOMWEB_PATHS, **FHIR_PATHS}.items():
        result["paths"].setdefault(path, {}).update(item)
    result.setdefault("components", {}).setdefault("schemas", {}).update(STUDY_COMPONENTS)
    return operations_complete(result, drf_paths=drf_paths)


class BearerScheme(OpenApiAuthenticationExtension):  # type: ignore[no-untyped-call]
    """Tells drf-spectacular that DRF views authenticate by the `bearer` scheme (settings' SECURITY)."""

    target_class = "accounts.authentication.BearerAuthentication"
    name = "bearer"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer"}
