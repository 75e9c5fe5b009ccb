"""The requests the OHIF Viewer makes to open a study, from another origin, over real HTTP:
CORS preflight (no key), QIDO-RS studies with OHIF's includefields, series, series metadata,
frames and thumbnails (OHIF v3's DicomWebDataSource, wadors rendering)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support import live
from tests.support.dicomfactory import make_study
from tests.support.dicomweb_support import STOW_TYPE
from tests.support.multipart import build_multipart
from tests.support.world import World

VIEWER = "http://viewer.example:3000"
FRAMES = "multipart/related; type=application/octet-stream; transfer-syntax=*"
JSON = "application/dicom+json"


@pytest.fixture(scope="module")
def viewer_server(child_env: dict[str, str], run_dir) -> Iterator[live.Server]:
    """A server that allows the viewer's origin (CORS_ALLOWED_ORIGINS)."""
    server = live.server({**child_env, "CORS_ALLOWED_ORIGINS": VIEWER}, run_dir)
    yield server
    server.stop()


def _preflight(api: httpx.Client, path: str, origin: str = VIEWER) -> httpx.Response:
    return api.options(path, headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                      "Access-Control-Request-Headers": "authorization,accept"})  # fmt: skip


def test_it_opens_a_study_as_the_ohif_viewer_does(viewer_server: live.Server, world: World, clock, indexer) -> None:
    parts = make_study(n_series=2, per_series=3, patient_id="OHIF1", pixel_bytes=64 * 64)
    with httpx.Client(base_url=f"{viewer_server.url}/api/v2/dicomweb", timeout=30) as api:
        stored = api.post("/studies", content=build_multipart(parts, "ohif"),
                          headers={**world.bob.headers, "Content-Type": STOW_TYPE.format(boundary="ohif")})  # fmt: skip
        assert stored.status_code == 200
        key = {**world.bob.headers, "Origin": VIEWER}

        def get(path: str, accept: str = JSON, **params: str) -> httpx.Response:
            assert _preflight(api, path).status_code == 200  # the browser asks first, without the key
            response = api.get(path, params=params, headers={**key, "Accept": accept})
            assert response.status_code == 200, (path, response.text)
            assert response.headers["access-control-allow-origin"] == VIEWER
            assert "x-request-id" in response.headers["access-control-expose-headers"]
            return response

        preflight = _preflight(api, "/studies")
        assert preflight.headers["access-control-allow-origin"] == VIEWER
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        studies = get("/studies", limit="101", offset="0", fuzzymatching="false", includefield="00081030,00080060")
        (study,) = studies.json()
        assert study["00100020"]["Value"] == ["OHIF1"] and study["00201208"]["Value"] == [6]
        assert study["00080060"]["Value"] == ["CT"]  # named in includefield, from the stored metadata
        study_uid = study["0020000D"]["Value"][0]
        series = get(f"/studies/{study_uid}/series", includefield="00080021,00080031").json()
        assert len(series) == 2
        for one in series:
            series_uid = one["0020000E"]["Value"][0]
            metadata = get(f"/studies/{study_uid}/series/{series_uid}/metadata").json()
            assert len(metadata) == 3
            for instance in metadata:
                sop = instance["00080018"]["Value"][0]
                base = f"/studies/{study_uid}/series/{series_uid}/instances/{sop}"
                frame = get(f"{base}/frames/1", accept=FRAMES)
                assert frame.headers["content-type"].startswith('multipart/related; type="application/octet-stream"')
                thumbnail = get(f"{base}/thumbnail", accept="image/jpeg")
                assert thumbnail.content[:3] == b"\xff\xd8\xff"
            assert (
                get(f"/studies/{study_uid}/series/{series_uid}/thumbnail", accept="image/jpeg").content[:2]
                == b"\xff\xd8"
            )


def test_it_gives_other_origins_nothing(viewer_server: live.Server, world: World, clock) -> None:
    with httpx.Client(base_url=f"{viewer_server.url}/api/v2", timeout=30) as api:
        preflight = _preflight(api, "/dicomweb/studies", origin="http://evil.example")
        assert "access-control-allow-origin" not in preflight.headers
        answer = api.get("/dicomweb/studies", headers={**world.bob.headers, "Origin": "http://evil.example"})
        assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers
        # The same rule for Django's views (django-cors-headers' middleware): one configuration.
        allowed = api.get("/organization", headers={**world.bob.headers, "Origin": VIEWER})
        assert allowed.headers["access-control-allow-origin"] == VIEWER
        assert _preflight(api, "/studies").headers["access-control-allow-origin"] == VIEWER
        assert "access-control-allow-origin" not in api.get("/organization", headers={**world.bob.headers,
                                                            "Origin": "http://evil.example"}).headers  # fmt: skip
