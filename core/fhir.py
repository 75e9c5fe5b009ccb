"""FHIR R4 media types and the searchset Bundle, shared by every API that answers in FHIR."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"

# Code systems and identifier systems more than one resource uses.
DCM_SYSTEM = "http://dicom.nema.org/resources/ontology/DCM"  # the DICOM vocabulary, PS3.16
DICOM_UID_SYSTEM = "urn:dicom:uid"  # identifiers that are DICOM UIDs, as urn:oid:<uid>


def searchset(
    *, resources: Iterable[dict[str, Any]], links: list[dict[str, str]], total: int | None = None
) -> dict[str, Any]:
    """A searchset Bundle (FHIR R4 Bundle, type searchset): every resource a match, ``links``
    (``self``, ``next``) as given, ``total`` when the search counted its matches."""
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
    if total is not None:
        bundle["total"] = total
    bundle["link"] = links
    bundle["entry"] = [{"resource": resource, "search": {"mode": "match"}} for resource in resources]
    return bundle
