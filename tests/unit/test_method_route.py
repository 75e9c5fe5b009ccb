"""core.method_route: one URL, one class per method, answering as one class with every method would."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.method_route import route_by_method


class Open(APIView):
    authentication_classes = []
    permission_classes = []


class ReadApi(Open):
    def get(self, request: Request, uid: str) -> Response:
        return Response({"read": uid, "by": type(self).__name__})


class DeleteApi(Open):
    def delete(self, request: Request, uid: str) -> Response:
        return Response({"deleted": uid, "by": type(self).__name__})


class BothApi(ReadApi, DeleteApi):
    """What the route stands for: the plain DRF way, one class with every method."""


route = route_by_method(GET=ReadApi, DELETE=DeleteApi)
plain = BothApi.as_view()


@pytest.mark.parametrize("method", ["get", "delete", "head", "post", "put", "options"])
def test_it_answers_every_method_as_one_class_with_them_all_would(method: str) -> None:
    ours: Any = route(getattr(RequestFactory(), method)("/x/1.2"), uid="1.2")
    theirs: Any = plain(getattr(RequestFactory(), method)("/x/1.2"), uid="1.2")
    ours.render()
    theirs.render()

    assert (ours.status_code, ours.get("Allow")) == (theirs.status_code, theirs.get("Allow"))
    if method in ("get", "delete"):
        assert ours.data == {**theirs.data, "by": {"get": "ReadApi", "delete": "DeleteApi"}[method]}


def test_it_shows_the_schema_generator_every_operation_and_skips_csrf() -> None:
    assert route.cls().allowed_methods == ["GET", "DELETE", "OPTIONS"]  # type: ignore[attr-defined]
    assert route.csrf_exempt  # type: ignore[attr-defined]
