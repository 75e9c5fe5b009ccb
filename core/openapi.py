"""OpenAPI pieces: the path items of the Channels consumer routes, which DRF does not see (each
app writes its own; prizmed/openapi.py merges them into the generated schema), and the rules
that make every operation of the schema complete (``operations_complete``).

The served schema is the contract: docs/openapi.json holds it as generated, and
tests/test_openapi_contract.py fails when the two differ (`make openapi` rewrites the file).
"""

from __future__ import annotations

import re
from typing import Any

PROBLEM = {
    "type": "object",
    "description": (
        "RFC 9457 problem details. Some problems add members: `errors` (parameter name -> messages), "
        "`parameter` / `parameters` (the query parameters at fault)."
    ),
    "properties": {
        "type": {"type": "string", "description": "/problems/<slug>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string", "format": "uuid"},
    },
    "required": ["type", "title", "status", "detail", "request_id"],
}
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_MEDIA_TYPE = "application/problem+json"
_PROBLEM_CONTENT = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
# X-Request-Id must be a UUID v4 (API.md): the pattern says so, so that a schema-valid id is never refused.
UUID4_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-4[0-9a-fA-F]{3}-[89abAB][0-9a-fA-F]{3}-[0-9a-fA-F]{12}$"
UUID4_SCHEMA = {"type": "string", "format": "uuid", "pattern": UUID4_PATTERN}
API_PREFIX = "/api/v2/"
# Under the FHIR REST API every error is an OperationOutcome, as FHIR clients expect (API.md §8).
FHIR_PREFIX = "/api/v2/fhir/"
OPERATION_OUTCOME_CONTENT = {
    "application/fhir+json; fhirVersion=4.0": {
        "schema": {"type": "object", "description": "FHIR R4 OperationOutcome: issue[0].code says why."}
    }
}

# Refusals any API operation can make, whoever serves it (the gateway, the key check, the rate limit).
COMMON_PROBLEMS = {
    "400": "A malformed header (X-Request-Id not a UUID v4, a forged Host) or parameter.",
    "401": "Missing, malformed, unknown, revoked or expired API key (WWW-Authenticate: Bearer).",
    "429": "The organization's request rate limit is reached (Retry-After).",
}
NOT_FOUND = "No such resource in this organization."
# DRF negotiates the answer's media type from Accept; the consumers and DICOMweb document their own.
NOT_ACCEPTABLE = "Accept names no media type this operation answers with."
_METHODS = ("get", "put", "post", "delete", "patch")
_PATH_PARAMETER = re.compile(r"\{[^}]+\}")


def header_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": False, "description": description, "schema": schema}


def query_parameter(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def problem_response_object(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}}


REQUEST_ID_PARAMETER = header_parameter(
    "X-Request-Id",
    "UUID v4 naming this request (generated when absent); echoed in X-Request-Id and in problems.",
    UUID4_SCHEMA,
)


def operations_complete(schema: dict[str, Any], *, drf_paths: set[str]) -> dict[str, Any]:
    """Every operation under /api/v2/: the bearer security requirement, the X-Request-Id header,
    the common refusals (404 too when the path has parameters, 406 for DRF views), and every
    error response as problem+json, or under the FHIR API as an OperationOutcome (an error
    described without a body gets that body).
    ``drf_paths``: the paths DRF generated (the others are consumers'). Returns ``schema``."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM
    for path, item in schema["paths"].items():
        if not path.startswith(API_PREFIX):
            continue
        for method in _METHODS:
            if (operation := item.get(method)) is not None:
                operation.setdefault("security", [{"bearer": []}])
                _request_id_declared(operation.setdefault("parameters", []))
                refusals = dict(COMMON_PROBLEMS)
                if _PATH_PARAMETER.search(path):
                    refusals["404"] = NOT_FOUND
                if path in drf_paths:
                    refusals["406"] = NOT_ACCEPTABLE
                body = OPERATION_OUTCOME_CONTENT if path.startswith(FHIR_PREFIX) else _PROBLEM_CONTENT
                operation["responses"] = _with_problems(operation["responses"], refusals, body)
    return schema


def _request_id_declared(parameters: list[dict[str, Any]]) -> None:
    """X-Request-Id in ``parameters``, with the one schema (an app may declare it with its own text)."""
    for parameter in parameters:
        if parameter.get("in") == "header" and parameter.get("name", "").lower() == "x-request-id":
            parameter["schema"] = REQUEST_ID_PARAMETER["schema"]
            return
    parameters.append(REQUEST_ID_PARAMETER)


def _with_problems(responses: dict[str, Any], refusals: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    for status, description in refusals.items():
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status[0] in "45" and "$ref" not in response and not response.get("content"):
            response["content"] = dict(body)
    return dict(sorted(responses.items()))
