"""Dispatch for the raw ASGI apps (DICOMweb, FHIR REST): each keeps one table of routes, whose
templates compile once to patterns, and finds the routes of a path here."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, TypeVar


class PathRoute(Protocol):
    """A route as ``routes_match`` needs it: its method and its compiled path pattern."""

    @property
    def method(self) -> str: ...

    @property
    def regex(self) -> re.Pattern[str]: ...


R = TypeVar("R", bound=PathRoute)


def routes_match(routes: Sequence[R], path: str) -> tuple[list[R], dict[str, str]]:
    """The routes whose pattern matches all of ``path`` (one per method; the caller answers 405
    for another method, 404 for none), and the path's named parameters."""
    found: list[R] = []
    params: dict[str, str] = {}
    for route in routes:
        match = route.regex.fullmatch(path)
        if match is not None:
            found.append(route)
            params = match.groupdict()
    return found, params
