"""FHIR R4 media types and the searchset Bundle, shared by every API that answers in FHIR."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"


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
