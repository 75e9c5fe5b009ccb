"""Resources as the FHIR API serves them: the record log's current resource with ``meta``
(``versionId`` = the number of the event that wrote it, ``lastUpdated`` = when), its contained
DICOMweb Endpoint pointing at this server, and the one Endpoint resource, ``Endpoint/dicomweb``.
"""

from __future__ import annotations

import json
from email.utils import format_datetime
from typing import Any

from core.links import DICOMWEB_PATH
from records.search import Found

ENDPOINT_ID = "dicomweb"
ENDPOINT_VERSION = "1"
WADO_RS = {"system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type", "code": "dicom-wado-rs"}
# Elements with cardinality 1..* in FHIR R4, kept whatever _elements asks ("SHOULD always return
# mandatory elements", §3.1.1.5.9), so a subset still validates.
MANDATORY = {
    "ImagingStudy": ("status", "subject"),
    "AuditEvent": ("type", "recorded", "agent", "source"),
    "Endpoint": ("status", "connectionType", "payloadType", "address"),
}
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def etag(version: str) -> str:
    return f'W/"{version}"'


def etag_matches(if_none_match: str | None, version: str) -> bool:
    """Whether ``If-None-Match`` names this version (RFC 9110 §13.1.2, weak comparison). Bare
    version ids are taken too: fhirpy's refresh() sends ``meta.versionId`` unquoted."""
    if if_none_match is None:
        return False
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/").strip('"') == version:
            return True
    return False


def served(found: Found, base: str) -> dict[str, Any]:
    """The resource of ``found`` with its meta; an ImagingStudy's contained Endpoint addresses
    the DICOMweb service of ``base`` (scheme://host[:port]), where its instances are retrieved."""
    resource: dict[str, Any] = json.loads(found.body)
    resource["meta"] = {"versionId": str(found.seq), "lastUpdated": found.updated.isoformat()}
    for contained in resource.get("contained", []):
        if contained.get("resourceType") == "Endpoint":
            contained["address"] = base + DICOMWEB_PATH
    return resource


def read_headers(found: Found) -> tuple[tuple[str, str], ...]:
    return (("ETag", etag(str(found.seq))), ("Last-Modified", format_datetime(found.updated, usegmt=True)))


def endpoint(base: str) -> dict[str, Any]:
    """``Endpoint/dicomweb``: the DICOMweb service (PS3.18) whose WADO-RS retrieves every study."""
    return {
        "resourceType": "Endpoint",
        "id": ENDPOINT_ID,
        "meta": {"versionId": ENDPOINT_VERSION},
        "status": "active",
        "connectionType": WADO_RS,
        "name": "PrizMed DICOMweb",
        "payloadType": [{"text": "DICOM"}],
        "payloadMimeType": ["application/dicom", "application/dicom+json"],
        "address": base + DICOMWEB_PATH,
    }


def subset(resource: dict[str, Any], elements: tuple[str, ...]) -> dict[str, Any]:
    """The resource cut to ``elements`` (``_elements``, FHIR R4 §3.1.1.5.9), marked SUBSETTED."""
    if not elements:
        return resource
    keep = {"resourceType", "id", *elements, *MANDATORY.get(resource["resourceType"], ())}
    kept = {name: value for name, value in resource.items() if name in keep}
    meta = dict(resource.get("meta", {}))
    meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    kept["meta"] = meta
    return kept
