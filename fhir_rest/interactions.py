"""The FHIR interactions (FHIR R4 §3.1.0): capabilities, read, search-type and Patient
$everything. Each takes the request and returns an Answer; they run on a thread (database
reads) and raise ApiError for refusals, which the app answers as OperationOutcome.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from core.errors import ApiError
from core.fhir import searchset
from fhir_rest.audit import audit_search
from fhir_rest.capabilities import EVERYTHING, RESOURCES, ResourceType, capability_statement
from fhir_rest.outcome import fhir_error
from fhir_rest.query import (
    SearchQuery,
    count_parse,
    cursor_parse,
    resource_id_valid,
    search_query_parse,
    value_parse,
)
from fhir_rest.request import Answer, FhirRequest
from fhir_rest.resources import (
    ENDPOINT_ID,
    ENDPOINT_VERSION,
    endpoint,
    etag,
    etag_matches,
    read_headers,
    served,
    subset,
)
from records.models import EventKind
from records.search import (
    SEARCH_PARAMS,
    Criterion,
    Found,
    Match,
    resource_id_criterion,
    resource_read,
    resources_search,
    resources_search_count,
    study_deleted,
)

MAX_INCLUDED = 1000  # resources an _include/_revinclude may add to one page


def _no_such(kind: str, resource_id: str) -> ApiError:
    return fhir_error(404, f"No {kind} with id {resource_id[:64]!r} for this organization.", "not-found")


def capabilities(req: FhirRequest) -> Answer:
    return Answer(200, capability_statement(req.base()))


def read(req: FhirRequest) -> Answer:
    """GET [type]/[id]: 200 with ETag and Last-Modified, 304 when If-None-Match names the current
    version, 404 (none for this organization), 410 (an ImagingStudy whose study was deleted)."""
    kind, resource_id = req.params["type"], req.params["id"]
    if_none_match = req.header(b"if-none-match")
    if kind == "Endpoint":
        if resource_id != ENDPOINT_ID:
            raise _no_such(kind, resource_id)
        headers = (("ETag", etag(ENDPOINT_VERSION)),)
        if etag_matches(if_none_match, ENDPOINT_VERSION):
            return Answer(304, None, headers)
        return Answer(200, endpoint(req.base()), headers)
    found = resource_read(organization_id=req.organization_id, kind=kind, resource_id=resource_id)
    if resource_id_valid(resource_id) and found is None:
        if kind == EventKind.STUDY and study_deleted(organization_id=req.organization_id, study_uid=resource_id):
            raise fhir_error(410, f"ImagingStudy {resource_id} was deleted.", "deleted")
    if found is None:
        raise _no_such(kind, resource_id)
    if etag_matches(if_none_match, str(found.seq)):
        return Answer(304, None, read_headers(found))
    return Answer(200, served(found, req.base()), read_headers(found))


def _link(req: FhirRequest, path: str, pairs: list[tuple[str, str]], cursor: int | None) -> str:
    kept = [(name, value) for name, value in pairs if name != "_cursor"]
    if cursor:
        kept.append(("_cursor", str(cursor)))
    query = urlencode(kept)
    return f"{req.fhir_base()}/{path}" + (f"?{query}" if query else "")


def _entry(req: FhirRequest, resource: dict[str, Any], mode: str) -> dict[str, Any]:
    return {
        "fullUrl": f"{req.fhir_base()}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def _bundle(
    req: FhirRequest, *, path: str, entries: list[dict[str, Any]], total: int | None, next_cursor: int | None
) -> dict[str, Any]:
    """A searchset Bundle with ``self`` and, when there is more, ``next`` (core/links.py's base)."""
    pairs = req.pairs()
    links = [{"relation": "self", "url": _link(req, path, pairs, cursor_parse(pairs))}]
    if next_cursor is not None:
        links.append({"relation": "next", "url": _link(req, path, pairs, next_cursor)})
    bundle = searchset(resources=[], links=links, total=total)
    bundle["entry"] = entries
    if not entries:
        del bundle["entry"]  # FHIR forbids empty arrays
    return bundle


def _page(found: list[Found], count: int) -> tuple[list[Found], int | None]:
    """The page of ``count`` from ``count + 1`` rows, and the cursor of the next, if any."""
    page = found[:count]
    return page, (page[-1].id if len(found) > count and page else None)


def _included(req: FhirRequest, page: list[dict[str, Any]], query: SearchQuery) -> list[dict[str, Any]]:
    """Patients of the page's studies (_include) or studies of its patients (_revinclude)."""
    org = req.organization_id
    if query.includes:
        refs = sorted({r["subject"]["reference"].removeprefix("Patient/") for r in page if "subject" in r})
        criteria = [resource_id_criterion("Patient", refs)]
        kind = "Patient"
    elif query.rev_includes:
        refs = sorted(f"Patient/{r['id']}" for r in page)
        criteria = [Criterion(SEARCH_PARAMS["ImagingStudy"]["subject"], tuple(Match(value=ref) for ref in refs))]
        kind = "ImagingStudy"
    else:
        return []
    if not refs:
        return []
    found = resources_search(organization_id=org, kind=kind, criteria=criteria, after_id=0, limit=MAX_INCLUDED + 1)
    if len(found) > MAX_INCLUDED:
        raise fhir_error(400, f"The page would include more than {MAX_INCLUDED} resources: ask a smaller _count.",
                         "too-costly")  # fmt: skip
    return [_entry(req, served(row, req.base()), "include") for row in found]


def search(req: FhirRequest) -> Answer:
    """GET [type]?... and POST [type]/_search: a searchset Bundle, ``_count`` per page, ``next``
    while there is more (a row-id cursor: stable while resources change)."""
    resource = RESOURCES[req.params["type"]]
    query = search_query_parse(resource, req.pairs())
    if resource.admin_only:
        return _audit_search(req, resource, query)
    org, kind = req.organization_id, resource.name
    total = resources_search_count(organization_id=org, kind=kind, criteria=query.criteria) if query.total else None
    if query.summary_count or query.count == 0:
        return Answer(200, _bundle(req, path=kind, entries=[], total=total, next_cursor=None))
    found = resources_search(
        organization_id=org, kind=kind, criteria=query.criteria, after_id=query.cursor, limit=query.count + 1
    )
    page, next_cursor = _page(found, query.count)
    resources = [served(row, req.base()) for row in page]
    entries = [_entry(req, subset(r, query.elements), "match") for r in resources]
    entries += _included(req, resources, query)
    return Answer(200, _bundle(req, path=kind, entries=entries, total=total, next_cursor=next_cursor))


def _audit_search(req: FhirRequest, resource: ResourceType, query: SearchQuery) -> Answer:
    if not req.key.is_admin:
        raise fhir_error(403, "AuditEvent search needs an admin-role API key.", "forbidden")
    rows, total = audit_search(
        organization=req.key.organization, criteria=query.criteria, before=query.cursor or None, limit=query.count + 1
    )
    if query.summary_count or query.count == 0:
        return Answer(200, _bundle(req, path=resource.name, entries=[], total=total, next_cursor=None))
    page = rows[: query.count]
    next_cursor = page[-1][0] if len(rows) > query.count and page else None
    entries = [_entry(req, subset(event, query.elements), "match") for _, event in page]
    return Answer(200, _bundle(req, path=resource.name, entries=entries, total=total, next_cursor=next_cursor))


def everything(req: FhirRequest) -> Answer:
    """GET Patient/[id]/$everything (FHIR R4 Patient-everything): the Patient (first page) and its
    ImagingStudies, ``_since`` (changed at or after that instant), ``_count`` per page, ``next``."""
    pairs = req.pairs()
    for name, _ in pairs:
        if name not in EVERYTHING.params:
            raise fhir_error(400, f"$everything takes {', '.join(EVERYTHING.params)}; not {name!r}.", "invalid",
                             parameter=name)  # fmt: skip
    patient_id = req.params["id"]
    patient = resource_read(organization_id=req.organization_id, kind="Patient", resource_id=patient_id)
    if patient is None:
        raise _no_such("Patient", patient_id)
    count, cursor = count_parse(pairs), cursor_parse(pairs)
    since_values = [value for name, value in pairs if name == "_since"]
    last_updated = SEARCH_PARAMS["ImagingStudy"]["_lastUpdated"]
    since = [value_parse(last_updated, value, "_since") for value in since_values]
    criteria: list[Criterion] = [
        Criterion(SEARCH_PARAMS["ImagingStudy"]["subject"], (Match(value=f"Patient/{patient_id}"),)),
        *(Criterion(last_updated, (Match(prefix="ge", low=m.low, high=m.high),)) for m in since),
    ]
    patient_shown = all(patient.updated >= m.low for m in since if m.low is not None)
    studies = resources_search_count(organization_id=req.organization_id, kind="ImagingStudy", criteria=criteria)
    found = resources_search(
        organization_id=req.organization_id, kind="ImagingStudy", criteria=criteria, after_id=cursor, limit=count + 1
    )
    page, next_cursor = _page(found, count)
    entries = [_entry(req, served(row, req.base()), "match") for row in page]
    if patient_shown and cursor == 0:
        entries.insert(0, _entry(req, served(patient, req.base()), "match"))
    total = studies + (1 if patient_shown else 0)
    path = f"Patient/{patient_id}/$everything"
    return Answer(200, _bundle(req, path=path, entries=entries, total=total, next_cursor=next_cursor))
