"""OpenAPI path items of the FHIR routes (an ASGI app DRF does not see), written from the route
table (routes.py), itself written from the declarations: the document lists what is served."""

from __future__ import annotations

import re
from typing import Any

from core.openapi import header_parameter, query_parameter
from fhir_rest.capabilities import FHIR_PATH, RESOURCES, RESULT_PARAMS, ResourceType
from fhir_rest.outcome import FHIR_JSON_R4
from fhir_rest.routes import ROUTES, Route

_RESOURCE = {"type": "object", "description": "A FHIR R4 resource (https://hl7.org/fhir/R4/)."}
_OUTCOME = {"description": "", "content": {FHIR_JSON_R4: {"schema": {"type": "object",
            "description": "FHIR R4 OperationOutcome: issue[0].code says why (invalid, security, forbidden, "
                           "not-found, deleted, not-supported, too-costly, throttled)."}}}}  # fmt: skip
_REFUSALS = {
    "400": "An unknown or malformed parameter, modifier, include or value (handling=strict).",
    "401": "Missing, malformed, unknown, revoked or expired key.",
    "404": "No such resource for this organization.",
    "406": "Anything but JSON asked for (_format or Accept).",
    "429": "The organization's request rate limit is reached.",
}


def _search_parameters(resource: ResourceType) -> list[dict[str, Any]]:
    found = [query_parameter(p.name, p.documentation, {"type": "string"}) for p in resource.search_params.values()]
    return found + [query_parameter(name, "FHIR result parameter", {"type": "string"}) for name in RESULT_PARAMS]


def _operation(route: Route) -> dict[str, Any]:
    resource = RESOURCES.get(route.resource or "")
    parameters: list[dict[str, Any]] = []
    if "{id}" in route.template:
        parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "string"}})
    if route.kind == "search" and resource is not None and route.method == "GET":
        parameters += _search_parameters(resource)
    if route.kind == "read":
        parameters.append(header_parameter("If-None-Match", "An ETag of the resource: 304 if current.",
                                           {"type": "string"}))  # fmt: skip
    responses: dict[str, Any] = {
        "200": {"description": route.summary, "content": {FHIR_JSON_R4: {"schema": _RESOURCE}}}
    }
    responses |= {status: _OUTCOME | {"description": text} for status, text in _REFUSALS.items()}
    if route.kind == "read":
        responses["304"] = {"description": "Not modified (If-None-Match)."}
        responses["410"] = _OUTCOME | {"description": "The ImagingStudy's study was deleted."}
    if resource is not None and resource.admin_only:
        responses["403"] = _OUTCOME | {"description": "A standard key: admin keys only."}
    operation: dict[str, Any] = {
        "operationId": "fhir_" + re.sub(r"\W+", "_", f"{route.method}{route.template}").strip("_").lower(),
        "summary": route.summary,
        "tags": ["fhir"],
        "parameters": parameters,
        "responses": responses,
    }
    if route.method == "POST":
        operation["requestBody"] = {
            "content": {"application/x-www-form-urlencoded": {"schema": {"type": "object"}}},
            "description": "The search parameters, as in the query string.",
        }
    return operation


PATHS: dict[str, dict[str, Any]] = {}
for _route in ROUTES:
    PATHS.setdefault(FHIR_PATH + _route.template, {})[_route.method.lower()] = _operation(_route)
