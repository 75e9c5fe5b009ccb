"""One URL served by one API class per HTTP method (STYLE.md: one thin API class per operation).

Django resolves a path to a single view, so `route_by_method` picks the class by the request's
method. Any other method goes to a class that inherits every handler: DRF answers it (405 with
the whole Allow header, OPTIONS) as it would for one class with all the methods, and the
OpenAPI generator, which reads a view's ``cls``, sees every operation of the URL there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView


def route_by_method(**views: type[APIView]) -> Callable[..., HttpResponseBase]:
    """``route_by_method(GET=ReadApi, DELETE=DeleteApi)``: each class serves its method."""
    handlers: dict[str, Callable[..., HttpResponseBase]] = {m.upper(): view.as_view() for m, view in views.items()}
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    every: type[APIView] = type("".join(view.__name__ for view in views.values()), tuple(views.values()), {})
    others: Callable[..., HttpResponseBase] = every.as_view()

    # DRF's views are exempt from CSRF (they authenticate by key); so is their router.
    @csrf_exempt
    def route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return handlers.get(request.method or "", others)(request, *args, **kwargs)

    route.cls = every  # type: ignore[attr-defined]  # what drf-spectacular enumerates
    route.initkwargs = {}  # type: ignore[attr-defined]
    return route
