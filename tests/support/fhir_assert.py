"""The one FHIR validity check of the tests: every resource PrizMed returns (FHIR routes, the
record stream and its SSE events, the audit routes) goes through ``assert_fhir_valid``, which
parses it with the fhir.resources R4B model of its type — a Bundle's entries and contained
resources each with their own model too, so nothing inside a Bundle escapes the check."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class


def assert_fhir_valid(resource: dict[str, Any]) -> Any:
    """The parsed model of ``resource``; raises (pydantic's ValidationError, or KeyError /
    AssertionError for a missing or unknown resourceType) when it is not valid R4B."""
    assert isinstance(resource, dict) and isinstance(resource.get("resourceType"), str), resource
    model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    for entry in resource.get("entry", []) if resource["resourceType"] == "Bundle" else []:
        if "resource" in entry:
            assert_fhir_valid(entry["resource"])
    for contained in resource.get("contained", []):
        assert_fhir_valid(contained)
    return model
