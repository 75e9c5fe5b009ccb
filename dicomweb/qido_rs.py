"""QIDO-RS handlers (PS3.18 §10.6): `/studies`, `/series`, `/instances`, and the same under a
study or series; the query checked (dicomweb/qido.py), run (dicomweb/search.py), answered as
DICOM JSON with a Warning when more results exist than were returned (§10.6.3.2)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from dicomweb.accept import accepts_json
from dicomweb.attributes import Level
from dicomweb.matching import Scope
from dicomweb.qido import Query, query_parse
from dicomweb.request import Request
from dicomweb.search import Page, search
from dicomweb.selectors import Target, target_check

MORE_RESULTS = (
    '299 {host}: "The number of results exceeded the maximum supported by the server. '
    'Additional results can be requested."'
)


async def search_studies(request: Request) -> None:
    await _search(request, Level.STUDY)


async def search_series(request: Request) -> None:
    await _search(request, Level.SERIES)


async def search_instances(request: Request) -> None:
    await _search(request, Level.INSTANCE)


async def _search(request: Request, level: Level) -> None:
    accepts_json(request.header(b"accept"))
    study_uid, series_uid = request.uid("study"), request.uid("series")
    query = query_parse(request.query(), level=level)
    scope = Scope(request.organization, study_uid, series_uid)
    page, base = await database_sync_to_async(_checked_search)(request, scope, query)
    headers = [(b"warning", MORE_RESULTS.format(host=base.partition("://")[2]).encode())] if page.more else []
    await request.send_dicom_json(200, page.results, headers)


def _checked_search(request: Request, scope: Scope, query: Query) -> tuple[Page, str]:
    """The search and the base of its links, on one thread hop with the check of the path: a
    study (or series) the path names must be the organization's, 404 otherwise, as for every
    resource of another tenant, rather than an empty answer (and before a bad Host's 400)."""
    if scope.study_uid is not None:
        target_check(organization=scope.organization, target=Target(scope.study_uid, scope.series_uid))
    base = request.base()
    return search(scope=scope, query=query, base=base), base
