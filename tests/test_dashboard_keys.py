"""The dashboard in a real browser: an admin issues a key, sees it once, revokes it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from accounts.models import APIKey
from tests.support import browser, live
from tests.support.world import World

pytestmark = pytest.mark.browser


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    yield from browser.chromium(tmp_path / "profile")


@pytest.fixture
def admin_user(world: World) -> User:
    return User.objects.create_superuser("dana", "dana@acme.test", "correct-horse-battery")


def test_it_shows_a_new_key_exactly_once_and_revokes_it(
    server: live.Server, driver: WebDriver, admin_user: User, world: World, run_dir: Path
) -> None:
    browser.admin_login(driver, server.url, "dana", "correct-horse-battery")
    driver.get(f"{server.url}/admin/accounts/apikey/add/")
    Select(driver.find_element(By.NAME, "organization")).select_by_visible_text("Acme Hospital")
    driver.find_element(By.NAME, "name").send_keys("pacs gateway")
    Select(driver.find_element(By.NAME, "role")).select_by_value("admin")
    driver.find_element(By.NAME, "_save").click()

    plaintext = WebDriverWait(driver, 20).until(lambda d: d.find_element(By.ID, "new-api-key")).text
    driver.save_screenshot(str(run_dir / "key-created.png"))
    key = APIKey.objects.get(name="pacs gateway")
    assert plaintext.startswith(key.prefix) and key.role == "admin"
    auth = {"Authorization": f"Bearer {plaintext}"}
    assert httpx.get(f"{server.url}/api/v2/organization", headers=auth).json()["slug"] == "acme"

    # Afterwards only the prefix: not in the list, not on the key's own page.
    for page in ("/admin/accounts/apikey/", f"/admin/accounts/apikey/{key.pk}/change/"):
        driver.get(server.url + page)
        assert key.prefix in driver.page_source
        assert plaintext not in driver.page_source

    driver.get(f"{server.url}/admin/accounts/apikey/")
    driver.find_element(By.CSS_SELECTOR, f"input[name=_selected_action][value='{key.pk}']").click()
    Select(driver.find_element(By.NAME, "action")).select_by_value("revoke_keys")
    driver.find_element(By.NAME, "index").click()
    WebDriverWait(driver, 20).until(lambda d: "Selected keys are revoked" in d.page_source)
    assert httpx.get(f"{server.url}/api/v2/organization", headers=auth).status_code == 401
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_auditors_cannot_touch_keys(server: live.Server, driver: WebDriver, world: World) -> None:
    auditor = User.objects.create_user("ivy", password="correct-horse-battery", is_staff=True)
    auditor.groups.add(Group.objects.get(name="Auditors"))
    browser.admin_login(driver, server.url, "ivy", "correct-horse-battery")
    driver.get(f"{server.url}/admin/accounts/apikey/add/")
    assert "403" in driver.title or "Forbidden" in driver.page_source
