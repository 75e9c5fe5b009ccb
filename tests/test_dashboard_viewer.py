"""The embedded viewer's access over real HTTP: a staff user opens a study from the dashboard, and
the cookie that grants reads DICOMweb of that study's organization only, reads only, and never
outlives the user's staff rights. (The viewer itself, in Chromium: test_dashboard_pages.py.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from django.contrib.auth.models import User

from studies.models import Study
from tests.support import live
from tests.support.dicomfactory import make_study
from tests.support.dicomweb_support import STOW_TYPE
from tests.support.multipart import build_multipart
from tests.support.world import Party, World

JSON = {"Accept": "application/dicom+json"}
PASSWORD = "correct-horse-battery"


def stow(server: live.Server, party: Party, patient_id: str) -> Study:
    parts = make_study(n_series=2, per_series=2, patient_id=patient_id, pixel_bytes=64 * 64)
    response = httpx.post(
        f"{server.url}/api/v2/dicomweb/studies",
        content=build_multipart(parts, "b"),
        headers={**party.headers, "Content-Type": STOW_TYPE.format(boundary="b")},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return Study.objects.get(organization=party.org, patient__patient_id=patient_id)


@contextmanager
def staff_session(server: live.Server, username: str) -> Iterator[httpx.Client]:
    """A browser-like client logged in to the dashboard as ``username``."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.get("/admin/login/")
        form = {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": client.cookies["csrftoken"]}
        assert client.post("/admin/login/", data=form).status_code == 302
        yield client


@pytest.fixture
def olive(world: World) -> User:
    return User.objects.create_superuser("olive", password=PASSWORD)


def test_it_grants_the_viewer_reads_of_the_opened_studys_organization_only(
    server: live.Server, world: World, olive: User, indexer: live.Process | None
) -> None:
    acme, globex = stow(server, world.bob, "V-ACME"), stow(server, world.carol, "V-GLOBEX")
    with staff_session(server, "olive") as browser:
        anonymous = browser.get(f"/api/v2/dicomweb/studies/{acme.study_uid}/metadata", headers=JSON)
        assert anonymous.status_code == 401  # the dashboard session alone reads nothing

        opened = browser.get(f"/dashboard/studies/{acme.pk}/viewer")
        assert opened.status_code == 302
        assert opened.headers["location"] == f"/viewer/viewer?StudyInstanceUIDs={acme.study_uid}"
        cookie = opened.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/api/v2/dicomweb/" in cookie

        metadata = browser.get(f"/api/v2/dicomweb/studies/{acme.study_uid}/metadata", headers=JSON)
        assert metadata.status_code == 200 and len(metadata.json()) == 4
        assert browser.get("/api/v2/dicomweb/studies", params={"PatientID": "V-GLOBEX"}, headers=JSON).json() == []
        other = browser.get(f"/api/v2/dicomweb/studies/{globex.study_uid}/metadata", headers=JSON)
        assert other.status_code == 404  # globex's study, though olive may see it in the dashboard

        store = browser.post(
            "/api/v2/dicomweb/studies",
            content=build_multipart(make_study(n_series=1, per_series=1), "b"),
            headers={"Content-Type": STOW_TYPE.format(boundary="b")},
        )
        assert store.status_code == 403 and store.headers["content-type"] == "application/problem+json"
        assert Study.objects.filter(organization=world.alice.org).count() == 1  # nothing stored

        forged = httpx.get(
            f"{server.url}/api/v2/dicomweb/studies/{acme.study_uid}/metadata",
            headers={**JSON, "Cookie": "prizmed_viewer=" + browser.cookies["prizmed_viewer"][:-2] + "xx"},
        )
        assert forged.status_code == 401

        olive.is_staff = False
        olive.save()
        revoked = browser.get(f"/api/v2/dicomweb/studies/{acme.study_uid}/metadata", headers=JSON)
        assert revoked.status_code == 401  # staff rights gone: the grant ends with them


def test_it_opens_the_viewer_for_staff_with_the_view_permission_only(
    server: live.Server, world: World, indexer: live.Process | None
) -> None:
    User.objects.create_user("pat", password=PASSWORD, is_staff=True)  # staff, but no permission on studies
    study = stow(server, world.bob, "V-PERM")
    with staff_session(server, "pat") as browser:
        assert browser.get(f"/dashboard/studies/{study.pk}/viewer").status_code == 403
        assert "prizmed_viewer" not in browser.cookies
        assert browser.get(f"/dashboard/studies/{study.pk}/thumbnail").status_code == 403
    anonymous = httpx.get(f"{server.url}/dashboard/studies/{study.pk}/viewer")
    assert anonymous.status_code == 302 and anonymous.headers["location"].startswith("/admin/login/")


def test_it_serves_the_viewer_configured_for_this_servers_dicomweb(server: live.Server, olive: User) -> None:
    with staff_session(server, "olive") as browser:
        page = browser.get("/viewer/viewer", params={"StudyInstanceUIDs": "1.2.3"})
        assert page.status_code == 200
        assert "window.PUBLIC_URL = '/viewer/'" in page.text and 'src="/viewer/app-config.js"' in page.text
        config = browser.get("/viewer/app-config.js")
        assert config.status_code == 200 and "Authorization" not in config.text
        assert '"wadoRoot": "/api/v2/dicomweb"' in config.text
        bundle = next(p for p in page.text.split('"') if p.startswith("/viewer/app.bundle."))
        assert browser.get(bundle).status_code == 200  # OHIF's own files, from its pinned build
