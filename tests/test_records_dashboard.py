"""The dashboard's "Live activity" page in headless Chromium: a change appears as it happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from tests.support import browser, live
from tests.support.records_support import delete_study, index_study
from tests.support.world import World

pytestmark = pytest.mark.browser


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    yield from browser.chromium(tmp_path / "profile")


def test_it_shows_new_events_live(server: live.Server, driver: WebDriver, world: World, run_dir: Path) -> None:
    User.objects.create_superuser("dana", "dana@acme.test", "correct-horse-battery")
    index_study(world.bob.org, patient_id="OLD", study_uid="1.2.3.9")  # before the page: not shown
    browser.admin_login(driver, server.url, "dana", "correct-horse-battery")
    driver.get(f"{server.url}/admin/")
    driver.find_element(By.LINK_TEXT, "Live activity").click()
    WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "live-status").text == "live")

    index_study(world.bob.org, patient_id="P-LIVE", study_uid="1.2.3.1")
    index_study(world.carol.org, patient_id="G-OTHER", study_uid="9.9.9.1")  # globex: not on acme's page
    delete_study(world.bob.org, "1.2.3.1")
    WebDriverWait(driver, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "tr.live-event")) >= 3)
    driver.save_screenshot(str(run_dir / "live-activity.png"))
    rows = driver.find_elements(By.CSS_SELECTOR, "tr.live-event")
    cells = [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]
    assert [c[:2] for c in cells] == [["5", "deleted"], ["4", "ImagingStudy"], ["3", "Patient"]]
    assert cells[2][3] == "P-LIVE" and cells[1][2] == "ImagingStudy/1.2.3.1"
    # The visible text, not the source: a random CSRF token once contained "OLD".
    shown = driver.find_element(By.TAG_NAME, "body").text
    assert "G-OTHER" not in shown and "OLD" not in shown


def test_it_refuses_the_live_stream_without_a_staff_session(server: live.Server, world: World) -> None:
    response = httpx.get(f"{server.url}/dashboard/live/stream?organization=acme")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/problem+json"
    page = httpx.get(f"{server.url}/dashboard/live/")
    assert page.status_code == 302 and "/admin/login/" in page.headers["location"]
