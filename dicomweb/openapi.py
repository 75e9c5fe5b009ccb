"""OpenAPI path items of the DICOMweb routes (an ASGI app DRF does not see), written from the
route table itself (dicomweb/routes.py) so the document cannot drift from what is served."""

from __future__ import annotations

import re
from typing import Any

from django.conf import settings

from core.links import DICOMWEB_PATH
from core.openapi import header_parameter, problem_response_object, query_parameter
from dicom.uid import UID_SCHEMA
from dicomweb.qido import MAX_OFFSET
from dicomweb.rendered import MAX_VIEWPORT
from dicomweb.routes import _PATTERNS, ROUTES, Route

_JSON = {"schema": {"type": "array", "items": {"type": "object", "description": "DICOM JSON (PS3.18 Annex F)"}}}
_BINARY = {"schema": {"type": "string", "format": "binary"}}
_PATH_DOCS = {
    "study": "Study Instance UID",
    "series": "Series Instance UID",
    "instance": "SOP Instance UID",
    "frames": "1-based frame numbers, comma-separated (rendered: one)",
    "path": "bulk data path from a BulkDataURI: GGGGEEEE, or SSSSSSSS/<item>/GGGGEEEE inside a sequence",
}
# Path parameters as the routes and the UID rule check them, so a schema-valid request is a valid one.
_PATH_SCHEMAS: dict[str, dict[str, Any]] = {
    "study": UID_SCHEMA,
    "series": UID_SCHEMA,
    "instance": UID_SCHEMA,
    "frames": {"type": "string", "pattern": "^[1-9][0-9]{0,8}(,[1-9][0-9]{0,8})*$"},
    "path": {"type": "string", "pattern": f"^{_PATTERNS['path']}$"},
}
# The matching keys themselves (a keyword or GGGGEEEE tag per attribute, docs/dicomweb.md) are
# named by the attribute, so OpenAPI cannot list them as parameters: the description says how.
_MATCHING = (
    "Matching: any attribute docs/dicomweb.md lists for this level, by keyword or GGGGEEEE tag, as a query "
    "parameter: single value, list (a,b), wildcard (* ?), range for dates and times (a-b); empty: returned, "
    "not matched. An unknown name is a 400."
)
_QIDO = [
    query_parameter("includefield", "Keywords or tags to return besides the defaults, comma-separated, or all.",
                    {"type": "string"}),
    query_parameter("fuzzymatching", "true: person names match from the start of any name component.",
                    {"type": "string", "enum": ["true", "false"]}),
    query_parameter("limit", "Results per answer (1 to DICOMWEB_QIDO_MAX_RESULTS, its default).",
                    {"type": "integer", "minimum": 1, "maximum": settings.DICOMWEB_QIDO_MAX_RESULTS}),
    query_parameter("offset", "Results to skip.", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}),
]  # fmt: skip
_NUMBER = r"[-+]?[0-9]{1,9}(\.[0-9]{1,6})?"
_PIXELS = r"([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[01][0-9]{2}|818[0-9]|819[0-2])"
assert MAX_VIEWPORT == 8192, "_PIXELS spells 1-8192"
_RENDER = [
    query_parameter("window", "center,width[,linear|linear-exact|sigmoid]",
                    {"type": "string", "pattern": f"^{_NUMBER},{_NUMBER}(,(linear|linear-exact|sigmoid))?$"}),
    query_parameter("viewport", f"vw,vh (1-{MAX_VIEWPORT} each): the image is scaled down to fit",
                    {"type": "string", "pattern": f"^{_PIXELS},{_PIXELS}$"}),
    query_parameter("quality", "JPEG quality, 1-100", {"type": "integer", "minimum": 1, "maximum": 100}),
]  # fmt: skip
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
        {"name": name, "in": "path", "required": True, "description": _PATH_DOCS[name], "schema": _PATH_SCHEMAS[name]}
        for name in names
    ]
    if route.kind == "search":
        parameters += _QIDO
    elif route.kind == "rendered":
        parameters += _RENDER
    if route.kind in ("instances", "bulkdata"):
        parameters.append(
            header_parameter(
                "Range", "bytes=first-last: one range (206).", {"type": "string", "pattern": "^bytes=[0-9]+-[0-9]*$"}
            )
        )
    description, content = _ANSWERS[route.kind]
    responses: dict[str, Any] = {"200": {"description": description, "content": content}}
    responses |= {status: problem_response_object(text) for status, text in _REFUSALS.items()}
    if route.kind == "store":
        responses["413"] = problem_response_object("Over 4 GiB, or over the plan's study size.")
        responses["415"] = problem_response_object('Not multipart/related; type="application/dicom".')
        responses["422"] = problem_response_object("Not DICOM: refused from the first bytes that show it.")
    if route.kind in ("instances", "bulkdata"):
        responses["206"] = {"description": "The byte range asked for (Range).", "content": content}
        responses["416"] = problem_response_object("The range lies outside the representation.")
    if route.kind == "rendered":
        responses["422"] = problem_response_object("No image, or over the rendering limits (checked first).")
    operation: dict[str, Any] = {
        "operationId": "dicomweb_" + re.sub(r"\W+", "_", f"{route.method}{route.template}").strip("_").lower(),
        "summary": route.summary,
        **({"description": _MATCHING} if route.kind == "search" else {}),
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
