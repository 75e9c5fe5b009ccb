"""OpenAPI path items of the DICOMweb routes (an ASGI app DRF does not see), written from the
route table itself (dicomweb/routes.py) so the document cannot drift from what is served."""

from __future__ import annotations

import re
from typing import Any

from core.links import DICOMWEB_PATH
from core.openapi import header_parameter, problem_response_object, query_parameter
from dicomweb.routes import ROUTES, Route

_JSON = {"schema": {"type": "array", "items": {"type": "object", "description": "DICOM JSON (PS3.18 Annex F)"}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PATH_DOCS = {
    "study": "Study Instance UID",
    "series": "Series Instance UID",
    "instance": "SOP Instance UID",
    "frames": "1-based frame numbers, comma-separated (rendered: one)",
    "path": "bulk data path from a BulkDataURI: GGGGEEEE, or SSSSSSSS/<item>/GGGGEEEE inside a sequence",
}
_QIDO = [
    query_parameter("{attribute}", "A matching key (keyword or GGGGEEEE tag; docs/dicomweb.md lists them): "
                    "single value, list (a,b), wildcard (* ?), range for dates and times (a-b).", {"type": "string"}),
    query_parameter("includefield", "Keywords or tags to return besides the defaults, comma-separated, or all.",
                    {"type": "string"}),
    query_parameter("fuzzymatching", "true: person names match from the start of any name component.",
                    {"type": "boolean"}),
    query_parameter("limit", "Results per answer (1 to DICOMWEB_QIDO_MAX_RESULTS, its default).", {"type": "integer"}),
    query_parameter("offset", "Results to skip.", {"type": "integer"}),
]  # fmt: skip
_RENDER = [
    query_parameter("window", "center,width[,linear|linear-exact|sigmoid]", {"type": "string"}),
    query_parameter("viewport", "vw,vh: the image is scaled down to fit", {"type": "string"}),
    query_parameter("quality", "JPEG quality, 1-100", {"type": "integer"}),
]
_ANSWERS: dict[str, tuple[str, dict[str, Any]]] = {
    "store": ("Store response (PS3.18 §10.5.3): 200 all stored, 202 some failed or still indexing "
              "(Warning, Location), 409 none stored.", {"application/dicom+json": {"schema": {"type": "object"}}}),
    "search": ("Matches, DICOM JSON; a Warning when more exist.", {"application/dicom+json": _JSON}),
    "instances": ("The instances as stored; a single instance also as application/dicom, with Range (206), "
                  "ETag and Repr-Digest (SHA-256).", {"multipart/related": _BINARY, "application/dicom": _BINARY}),
    "metadata": ("DICOM JSON with BulkDataURIs; ETag / If-None-Match (304).", {"application/dicom+json": _JSON}),
    "frames": ("The frames, each a part in its stored media type.", {"multipart/related": _BINARY}),
    "bulkdata": ("The value, one application/octet-stream part (pixel data: its frames); Range (206).",
                 {"multipart/related": _BINARY}),
    "rendered": ("The image.", {"image/jpeg": _BINARY, "image/png": _BINARY}),
}  # fmt: skip
_REFUSALS = {
    "400": "A malformed UID, frame list, query parameter or header.",
    "401": "Missing, malformed, unknown, revoked or expired key.",
    "404": "No such study, series, instance or value for this organization.",
    "406": "The Accept header names a form PrizMed does not serve (it does not transcode).",
    "429": "The organization's request rate limit is reached.",
}


def _operation(route: Route) -> dict[str, Any]:
    names = re.findall(r"\{(\w+)\}", route.template)
    parameters = [
        {"name": name, "in": "path", "required": True, "description": _PATH_DOCS[name], "schema": {"type": "string"}}
        for name in names
    ]
    if route.kind == "search":
        parameters += _QIDO
    elif route.kind == "rendered":
        parameters += _RENDER
    if route.kind in ("instances", "bulkdata"):
        parameters.append(header_parameter("Range", "bytes=first-last: one range (206).", {"type": "string"}))
    description, content = _ANSWERS[route.kind]
    responses: dict[str, Any] = {"200": {"description": description, "content": content}}
    responses |= {status: problem_response_object(text) for status, text in _REFUSALS.items()}
    if route.kind == "store":
        responses["413"] = problem_response_object("Over 4 GiB, or over the plan's study size.")
        responses["415"] = problem_response_object('Not multipart/related; type="application/dicom".')
        responses["422"] = problem_response_object("Not DICOM: refused from the first bytes that show it.")
    if route.kind == "rendered":
        responses["422"] = problem_response_object("No image, or over the rendering limits (checked first).")
    operation: dict[str, Any] = {
        "operationId": "dicomweb_" + re.sub(r"\W+", "_", f"{route.method}{route.template}").strip("_").lower(),
        "summary": route.summary,
        "tags": ["dicomweb"],
        "parameters": parameters,
        "responses": responses,
    }
    if route.kind == "store":
        operation["requestBody"] = {"required": True, "content": {"multipart/related": _BINARY}}
    return operation


PATHS: dict[str, dict[str, Any]] = {}
for _route in ROUTES:
    PATHS.setdefault(DICOMWEB_PATH + _route.template, {})[_route.method.lower()] = _operation(_route)
