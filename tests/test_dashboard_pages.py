"""The dashboard in headless Chromium: one thumbnail per series on a study's page, the study
opened in OHIF shows its image (the viewport is not blank), and an organization's usage page
plots a burst of requests against its plan's limit."""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from django.contrib.auth.models import User
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from accounts.models import Plan
from tests.support import browser, live
from tests.support.world import Clock, World
from tests.test_dashboard_viewer import PASSWORD, stow

pytestmark = pytest.mark.browser

# A blank or uniform viewport has a pixel standard deviation near 0; the test image is a ramp.
MIN_STDDEV = 10.0


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    yield from browser.chromium(tmp_path / "profile")


def _loaded_images(driver: WebDriver, css: str) -> int:
    images = driver.find_elements(By.CSS_SELECTOR, css)
    return sum(1 for img in images if driver.execute_script("return arguments[0].naturalWidth", img) > 0)


def _viewport_stddev(driver: WebDriver) -> float:
    canvases = driver.find_elements(By.CSS_SELECTOR, ".cornerstone-canvas, .viewport-element canvas")
    if not canvases:
        return 0.0
    shot = Image.open(io.BytesIO(canvases[0].screenshot_as_png)).convert("L")
    return float(np.asarray(shot, dtype=np.float64).std())


def test_it_shows_series_thumbnails_and_opens_the_study_in_the_viewer(
    server: live.Server, world: World, driver: WebDriver, run_dir: Path, indexer: live.Process | None
) -> None:
    study = stow(server, world.bob, "VIEW1")
    User.objects.create_superuser("olive", password=PASSWORD)
    browser.admin_login(driver, server.url, "olive", PASSWORD)

    driver.get(f"{server.url}/admin/studies/study/")
    WebDriverWait(driver, 20).until(lambda d: _loaded_images(d, ".field-image img") == 1)

    driver.get(f"{server.url}/admin/studies/study/{study.pk}/change/")
    WebDriverWait(driver, 20).until(lambda d: _loaded_images(d, "table.series-overview img") == study.series_count)
    driver.save_screenshot(str(run_dir / "dashboard-study.png"))
    assert study.series_count == 2

    driver.find_element(By.LINK_TEXT, "Open in viewer").click()
    deadline = time.monotonic() + 90
    stddev = 0.0
    while time.monotonic() < deadline and stddev < MIN_STDDEV:
        time.sleep(1)
        stddev = _viewport_stddev(driver)
    driver.save_screenshot(str(run_dir / "viewer.png"))
    assert stddev >= MIN_STDDEV, (
        f"the viewport stayed blank (pixel stddev {stddev:.1f}); see {run_dir}/viewer.png",
        browser.console_errors(driver),
    )
    assert "/viewer/viewer" in driver.current_url and study.study_uid in driver.current_url


def test_it_plots_a_burst_of_requests_against_the_plans_limit(
    server: live.Server, world: World, driver: WebDriver, run_dir: Path, clock: Clock
) -> None:
    acme = world.alice.org
    acme.plan = Plan.objects.get(slug="developer")  # 60 requests per minute
    acme.save()
    if time.time() % 60 > 45:  # the burst falls in one wall-clock minute, as the plot counts them
        time.sleep(61 - time.time() % 60)
    with httpx.Client(base_url=f"{server.url}/api/v2", headers=world.bob.headers, timeout=30) as api:
        statuses = Counter(api.get("/studies").status_code for _ in range(65))
    assert statuses == {200: 60, 429: 5}
    User.objects.create_superuser("olive", password=PASSWORD)
    browser.admin_login(driver, server.url, "olive", PASSWORD)

    driver.get(f"{server.url}/admin/accounts/organization/{acme.pk}/change/")
    driver.find_element(By.LINK_TEXT, "Usage against the plan").click()
    driver.save_screenshot(str(run_dir / "dashboard-usage.png"))
    requests_chart = driver.find_elements(By.CSS_SELECTOR, "figure.usage-chart svg")[0]
    assert "max 65/min" in requests_chart.text and "plan limit 60/min" in requests_chart.text
    assert requests_chart.find_elements(By.CSS_SELECTOR, "line.limit")
    rows = {
        row.find_elements(By.TAG_NAME, "td")[0].text: row.find_elements(By.TAG_NAME, "td")[1].text
        for row in driver.find_elements(By.CSS_SELECTOR, "table.usage-statuses tbody tr")
    }
    assert rows == {"200": "60", "429": "5"}
