"""QIDO-RS handlers (PS3.18 §10.6): `/studies`, `/series`, `/instances`, and the same under a
study or series; the query checked (dicomweb/qido.py), run (dicomweb/search.py), answered as
DICOM JSON with a Warning when more results exist than were returned (§10.6.3.2)."""

from __future__ import annotations

from channels.db import database_sync_to_async

from dicomweb.accept import accepts_json
from dicomweb.attributes import Level
from dicomweb.matching import Scope
from dicomweb.qido import query_parse
from dicomweb.request import Request
from dicomweb.search import search
from dicomweb.selectors import Target, instances_get

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
    if study_uid is not None:
        # A study (or series) the path names must be the organization's: 404 otherwise, as
        # for every resource of another tenant, rather than an empty answer.
        await database_sync_to_async(instances_get)(
            organization=request.organization, target=Target(study_uid, series_uid)
        )
    base = request.base()
    page = await database_sync_to_async(search)(
        scope=Scope(request.organization, study_uid, series_uid), query=query, base=base
    )
    headers = [(b"warning", MORE_RESULTS.format(host=base.partition("://")[2]).encode())] if page.more else []
    await request.send_dicom_json(200, page.results, headers)
