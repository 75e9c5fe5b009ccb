"""The dashboard as a newcomer meets it, in headless Chromium (issue 14): reloading the "key
created" page issues no second key; an upload's page shows its rejections; an auditor's home page
offers only what an auditor may open; "View site" leads somewhere; lists fit 1400 px."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from accounts.models import APIKey
from accounts.services import key_issue, key_revoke
from studies.models import Study
from tests.support import browser, live
from tests.support import dicomfactory as dcm
from tests.support.indexing import index_now, stored_upload
from tests.support.world import World

pytestmark = pytest.mark.browser
PASSWORD = "correct-horse-battery"


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    yield from browser.chromium(tmp_path / "profile")


@pytest.fixture
def admin_user(world: World) -> User:
    return User.objects.create_superuser("dana", "dana@acme.test", PASSWORD)


def _forbidden_or_missing(driver: WebDriver) -> bool:
    return any(word in driver.title for word in ("403", "404", "Forbidden", "Not Found")) or (
        "Forbidden" in driver.page_source and "<h1>403" in driver.page_source
    )


def test_reloading_the_key_created_page_issues_no_second_key(
    server: live.Server, driver: WebDriver, admin_user: User, world: World, run_dir: Path
) -> None:
    browser.admin_login(driver, server.url, "dana", PASSWORD)
    driver.get(f"{server.url}/admin/accounts/apikey/add/")
    Select(driver.find_element(By.NAME, "organization")).select_by_visible_text("Acme Hospital")
    driver.find_element(By.NAME, "name").send_keys("reloaded")
    driver.find_element(By.NAME, "_save").click()
    plaintext = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "new-api-key")).text
    assert plaintext.startswith("pzm_")

    driver.refresh()  # the browser posts the same form again
    WebDriverWait(driver, 20).until(lambda d: d.find_elements(By.ID, "key-already-shown"))
    driver.save_screenshot(str(run_dir / "key-page-reloaded.png"))
    assert plaintext not in driver.page_source
    assert APIKey.objects.filter(name="reloaded").count() == 1
    assert APIKey.objects.get(name="reloaded").prefix in driver.page_source


def test_an_uploads_page_shows_its_rejections_and_time(
    server: live.Server, driver: WebDriver, admin_user: User, world: World, run_dir: Path
) -> None:
    instances = [dcm.make_instance(modality="MR"), dcm.truncated(dcm.make_instance(pixel_bytes=4000), 2500)]
    upload = index_now(stored_upload(world.alice.org, instances))
    assert upload.instances_rejected == 1
    browser.admin_login(driver, server.url, "dana", PASSWORD)

    driver.get(f"{server.url}/admin/studies/upload/")
    header = driver.find_element(By.CSS_SELECTOR, "#result_list thead").text.lower()
    assert "created" in header  # uploads are listed by time, newest first, not by id alone

    driver.get(f"{server.url}/admin/studies/upload/{upload.pk}/change/")
    driver.save_screenshot(str(run_dir / "upload-rejections.png"))
    rejections = driver.find_element(By.ID, "items-group").text
    item = upload.items.get(state="rejected")
    assert item.reason_code in rejections and item.reason[:40] in rejections

    study = Study.objects.get(study_uid=upload.study_uids[0])
    driver.get(f"{server.url}/admin/studies/study/{study.pk}/change/")
    assert '["MR"]' not in driver.page_source and "MR" in driver.find_element(By.ID, "content-main").text


def test_an_auditors_home_page_offers_only_what_an_auditor_may_open(
    server: live.Server, driver: WebDriver, world: World, run_dir: Path
) -> None:
    auditor = User.objects.create_user("ivy", password=PASSWORD, is_staff=True)
    auditor.groups.add(Group.objects.get(name="Auditors"))
    browser.admin_login(driver, server.url, "ivy", PASSWORD)
    driver.get(f"{server.url}/admin/")
    driver.save_screenshot(str(run_dir / "auditor-home.png"))
    assert "Live activity" not in driver.page_source
    hrefs = [a.get_attribute("href") or "" for a in driver.find_elements(By.CSS_SELECTOR, "#content a, #header a")]
    links = {href for href in hrefs if href.startswith(server.url) and "logout" not in href}
    assert any("/admin/accounts/auditentry/" in link for link in links)
    for link in sorted(links):
        driver.get(link)
        assert not _forbidden_or_missing(driver), link


def test_view_site_leads_to_the_api_documentation(
    server: live.Server, driver: WebDriver, admin_user: User, world: World
) -> None:
    browser.admin_login(driver, server.url, "dana", PASSWORD)
    driver.get(f"{server.url}/admin/")
    driver.find_element(By.LINK_TEXT, "VIEW SITE").click()
    WebDriverWait(driver, 20).until(lambda d: "/api/docs/" in d.current_url)
    assert not _forbidden_or_missing(driver)


def test_lists_fit_1400_pixels(
    server: live.Server, driver: WebDriver, admin_user: User, world: World, run_dir: Path
) -> None:
    soon = timezone.now() + timedelta(days=30)
    for n in range(3):
        key, _ = key_issue(organization=world.alice.org, name=f"a rather long key name {n}", expires_at=soon)
        key_revoke(key=key)
    index_now(stored_upload(world.alice.org, dcm.make_study(n_series=2, per_series=1)))
    driver.set_window_size(1400, 900)
    browser.admin_login(driver, server.url, "dana", PASSWORD)
    for page in ("accounts/apikey", "accounts/auditentry", "studies/study", "studies/series", "studies/upload",
                 "studies/uploaditem", "studies/patient", "accounts/organization"):  # fmt: skip
        driver.get(f"{server.url}/admin/{page}/")
        # The page, and the list's own scroll box (Django's `.results`, which hides what overflows it).
        overflow = driver.execute_script(
            "const r = document.querySelector('#changelist .results') || document.documentElement;"
            "return Math.max(r.scrollWidth - r.clientWidth,"
            " document.documentElement.scrollWidth - document.documentElement.clientWidth)"
        )
        driver.save_screenshot(str(run_dir / f"list-1400-{page.replace('/', '-')}.png"))
        if page == "accounts/apikey":
            header = driver.find_element(By.CSS_SELECTOR, "#result_list thead").text.lower()
            assert "revoked" in header and "expires" in header
        assert overflow <= 0, (page, overflow)
