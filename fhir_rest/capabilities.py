"""What the FHIR API implements, declared once: resource types, their interactions, search
parameters, includes and operations. The route table (routes.py), the query parser (query.py)
and ``GET /metadata`` (``capability_statement``, FHIR R4 CapabilityStatement) are all written
from these declarations, so the CapabilityStatement cannot claim what is not served, nor miss
what is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from core.fhir import FHIR_JSON
from fhir_rest.audit import AUDIT_PARAMS
from records.search import SEARCH_PARAMS, SearchParam

FHIR_VERSION = "4.0.1"
FHIR_PATH = "/api/v2/fhir"
READ = "read"
SEARCH = "search-type"
RELEASED = "2026-11-29"  # CapabilityStatement.date: when this statement last changed

# Result parameters (FHIR R4 §3.1.1.5) every search takes, besides its search parameters.
# `_cursor` is PrizMed's own paging position, written into `next` links; `_totalMethod` is sent
# by fhirpy's count() (an Aidbox parameter) and ignored.
RESULT_PARAMS = ("_count", "_cursor", "_include", "_revinclude", "_summary", "_elements", "_total", "_format")
IGNORED_PARAMS = ("_totalMethod",)
SUMMARY_VALUES = ("count", "false")
TOTAL_VALUES = ("none", "estimate", "accurate")


@dataclass(frozen=True)
class Operation:
    name: str  # without the $
    definition: str  # the standard OperationDefinition
    params: tuple[str, ...]  # the query parameters it takes
    documentation: str


@dataclass(frozen=True)
class ResourceType:
    name: str
    interactions: tuple[str, ...]
    search_params: Mapping[str, SearchParam] = field(default_factory=dict)
    includes: tuple[str, ...] = ()
    rev_includes: tuple[str, ...] = ()
    operations: tuple[Operation, ...] = ()
    admin_only: bool = False  # AuditEvent, like GET /audit-events
    documentation: str = ""


EVERYTHING = Operation(
    name="everything",
    definition="http://hl7.org/fhir/OperationDefinition/Patient-everything",
    params=("_since", "_count", "_cursor", "_format"),
    documentation="The Patient and its ImagingStudies, paged (_count, next links); _since: changed since then.",
)
SUBJECT_INCLUDES = ("ImagingStudy:subject", "ImagingStudy:patient")

RESOURCES: dict[str, ResourceType] = {
    "Patient": ResourceType(
        name="Patient",
        interactions=(READ, SEARCH),
        search_params=SEARCH_PARAMS["Patient"],
        rev_includes=SUBJECT_INCLUDES,
        operations=(EVERYTHING,),
        documentation="Patients of the key's organization, as indexed from DICOM (Patient ID per organization).",
    ),
    "ImagingStudy": ResourceType(
        name="ImagingStudy",
        interactions=(READ, SEARCH),
        search_params=SEARCH_PARAMS["ImagingStudy"],
        includes=SUBJECT_INCLUDES,
        documentation="Studies of the key's organization; id = Study Instance UID. A deleted study reads 410.",
    ),
    "Endpoint": ResourceType(
        name="Endpoint",
        interactions=(READ,),
        documentation="Endpoint/dicomweb: the DICOMweb (WADO-RS) service that serves the studies' instances.",
    ),
    "AuditEvent": ResourceType(
        name="AuditEvent",
        interactions=(SEARCH,),
        search_params=AUDIT_PARAMS,
        admin_only=True,
        documentation="The organization's audit log (admin keys only), newest first.",
    ),
}


def _resource_statement(resource: ResourceType) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "type": resource.name,
        "profile": f"http://hl7.org/fhir/StructureDefinition/{resource.name}",
        "documentation": resource.documentation,
        "interaction": [{"code": code} for code in resource.interactions],
        "versioning": "versioned",
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalRead": "not-match" if READ in resource.interactions else "not-supported",
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }
    if resource.includes:
        statement["searchInclude"] = list(resource.includes)
    if resource.rev_includes:
        statement["searchRevInclude"] = list(resource.rev_includes)
    if resource.search_params:
        statement["searchParam"] = [
            {"name": p.name, "type": p.type.value, "documentation": p.documentation}
            | ({"definition": p.definition} if p.definition else {})
            for p in resource.search_params.values()
        ]
    if resource.operations:
        statement["operation"] = [
            {"name": op.name, "definition": op.definition, "documentation": op.documentation}
            for op in resource.operations
        ]
    return statement


def capability_statement(base: str) -> dict[str, Any]:
    """The CapabilityStatement (FHIR R4 §3.1.0.3 capabilities interaction) of this server at
    ``base`` (scheme://host[:port]), from ``RESOURCES``."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "prizmed",
        "status": "active",
        "date": RELEASED,
        "publisher": "PrizMed",
        "kind": "instance",
        "software": {"name": "PrizMed", "version": settings.SPECTACULAR_SETTINGS["VERSION"]},
        "implementation": {"description": "PrizMed FHIR R4 API", "url": base + FHIR_PATH},
        "fhirVersion": FHIR_VERSION,
        "format": ["json", FHIR_JSON],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "JSON only. Every search takes " + ", ".join(RESULT_PARAMS) + " (_summary: "
                    + " or ".join(SUMMARY_VALUES) + "); an unknown parameter is refused (400), as with "
                    "Prefer: handling=strict. Errors are OperationOutcome resources."
                ),
                "security": {
                    "cors": True,
                    "description": "Authorization: Bearer <PrizMed API key>; data of the key's organization only.",
                },
                "resource": [_resource_statement(resource) for resource in RESOURCES.values()],
            }
        ],
    }  # fmt: skip
