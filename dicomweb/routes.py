"""The DICOMweb resources under /api/v2/dicomweb (PS3.18 §10.4-10.6): one table that the ASGI
app dispatches on and the OpenAPI document is written from (dicomweb/openapi.py)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cached_property

from core.route_table import routes_match
from dicomweb import qido_rs, rendered, retrieve, stow
from dicomweb.request import Request

Handler = Callable[[Request], Awaitable[None]]

_STUDY = "/studies/{study}"
_SERIES = _STUDY + "/series/{series}"
_INSTANCE = _SERIES + "/instances/{instance}"
_FRAMES = _INSTANCE + "/frames/{frames}"
_PATTERNS = {
    "study": r"[^/]+",
    "series": r"[^/]+",
    "instance": r"[^/]+",
    "frames": r"[^/]+",
    "path": r"[0-9A-Fa-f]{8}(?:/[0-9]{1,6}/[0-9A-Fa-f]{8}){0,15}",
}


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # the path under /api/v2/dicomweb, with {study}, {series}, ... placeholders
    handler: Handler
    kind: str  # what it serves, for the OpenAPI document: store, search, instances, ...
    summary: str

    @cached_property
    def regex(self) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{_PATTERNS[m[1]]})", self.template)
        return re.compile(pattern)


def _levels(suffix: str, handler: Handler, kind: str, what: str) -> list[Route]:
    return [
        Route("GET", _STUDY + suffix, handler, kind, f"{what} of a study"),
        Route("GET", _SERIES + suffix, handler, kind, f"{what} of a series"),
        Route("GET", _INSTANCE + suffix, handler, kind, f"{what} of an instance"),
    ]


ROUTES: list[Route] = [
    Route("POST", "/studies", stow.store, "store", "STOW-RS: store instances"),
    Route("POST", _STUDY, stow.store, "store", "STOW-RS: store instances of one study"),
    Route("GET", "/studies", qido_rs.search_studies, "search", "QIDO-RS: search studies"),
    Route("GET", "/series", qido_rs.search_series, "search", "QIDO-RS: search series"),
    Route("GET", "/instances", qido_rs.search_instances, "search", "QIDO-RS: search instances"),
    Route("GET", _STUDY + "/series", qido_rs.search_series, "search", "QIDO-RS: search the series of a study"),
    Route("GET", _STUDY + "/instances", qido_rs.search_instances, "search", "QIDO-RS: search the instances of a study"),
    Route("GET", _SERIES + "/instances", qido_rs.search_instances, "search", "QIDO-RS: search a series' instances"),
    *_levels("", retrieve.retrieve_instances, "instances", "WADO-RS: the instances"),
    *_levels("/metadata", retrieve.retrieve_metadata, "metadata", "WADO-RS: the metadata"),
    Route("GET", _FRAMES, retrieve.retrieve_frames, "frames", "WADO-RS: frames of an instance"),
    Route("GET", _INSTANCE + "/bulkdata/{path}", retrieve.retrieve_bulk_data, "bulkdata", "WADO-RS: a bulk data value"),
    *_levels("/rendered", rendered.rendered, "rendered", "WADO-RS: rendered image"),
    Route("GET", _FRAMES + "/rendered", rendered.rendered, "rendered", "WADO-RS: a rendered frame"),
    *_levels("/thumbnail", rendered.thumbnail, "rendered", "WADO-RS: thumbnail"),
    Route("GET", _FRAMES + "/thumbnail", rendered.thumbnail, "rendered", "WADO-RS: thumbnail of a frame"),
]


def route_match(path: str) -> tuple[list[Route], dict[str, str]]:
    """The routes whose template matches ``path`` (one per method), and the path's parameters."""
    return routes_match(ROUTES, path)
