"""Route labels of core/metrics.py: resources become {id}, so the number of series stays bounded."""

from __future__ import annotations

import pytest

from core import metrics


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v2/dicom/stream", "/api/v2/dicom/stream"),
        ("/api/v2/studies/1.2.840.10008.1/series", "/api/v2/studies/{id}/series"),
        ("/api/v2/dicomweb/studies/1.2/series/3.4/frames/1,2", "/api/v2/dicomweb/studies/{id}/series/{id}/frames/{id}"),
        ("/admin/studies/study/12/change/", "/admin/studies/study/{id}/change/"),
        ("/viewer/1403.bundle.e8fa44b49cecd08db139.js", "/viewer/{id}"),
    ],
)  # fmt: skip
def test_it_names_resources_by_their_route(path: str, route: str) -> None:
    assert metrics.route_label(path, 200) == route


def test_it_labels_unknown_paths_and_caps_the_routes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert metrics.route_label("/no/such/thing", 404) == metrics.UNMATCHED
    monkeypatch.setattr(metrics, "_routes", set())
    monkeypatch.setattr(metrics, "MAX_ROUTES", 2)
    assert [metrics.route_label(f"/admin/{name}/", 302) for name in ("a", "b", "c", "a")] == [
        "/admin/a/",
        "/admin/b/",
        "other",
        "/admin/a/",
    ]
