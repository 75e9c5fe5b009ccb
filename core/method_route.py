"""One URL served by one API class per HTTP method (STYLE.md: one thin API class per operation).

Django resolves a path to a single view, so `route_by_method` picks the class by the request's
method. Any other method goes to a class that inherits every handler: DRF answers it (405,
OPTIONS) as it would for one class with all the methods, and every answer carries the whole
Allow header, as that class's would. The OpenAPI generator reads a view's ``cls`` (drf-
spectacular's enumeration, not public API: the shortcut fenced here), so it is shown that class
and sees every operation of the URL. tests/unit/test_method_route.py holds the answers equal to
one class's; tests/test_auth.py checks the schema names every route.
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
    every: type[APIView] = type("".join(view.__name__ for view in views.values()), tuple(views.values()), {})
    methods = [m.upper() for m in APIView.http_method_names if hasattr(every, m) or (m == "head" and "GET" in views)]
    handlers: dict[str, Callable[..., HttpResponseBase]] = {
        method.upper(): _with_allow(view, methods).as_view() for method, view in views.items()
    }
    if "GET" in handlers:
        handlers.setdefault("HEAD", handlers["GET"])
    others: Callable[..., HttpResponseBase] = every.as_view()

    # DRF's views are exempt from CSRF (they authenticate by key); so is their router.
    @csrf_exempt
    def route(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        return handlers.get(request.method or "", others)(request, *args, **kwargs)

    route.cls = every  # type: ignore[attr-defined]  # what drf-spectacular enumerates
    route.initkwargs = {}  # type: ignore[attr-defined]
    return route


def _with_allow(view: type[APIView], methods: list[str]) -> type[APIView]:
    """``view``, announcing every method of the URL in its Allow header (DRF's allowed_methods)."""
    return type(view.__name__, (view,), {"allowed_methods": methods})
