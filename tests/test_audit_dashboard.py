"""Auditors in a real browser: they find a delete in the audit log, filter it, cannot change it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import Group, User
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from accounts.models import AuditEntry
from tests.support import browser, dicomfactory, live
from tests.support.indexing import index_now, stored_upload
from tests.support.world import World

pytestmark = pytest.mark.browser


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[WebDriver]:
    yield from browser.chromium(tmp_path / "profile")


def test_it_lets_an_auditor_browse_the_delete_but_not_change_it(
    server: live.Server, api: httpx.Client, driver: WebDriver, world: World, run_dir: Path
) -> None:
    upload = index_now(stored_upload(world.alice.org, dicomfactory.make_study(n_series=1, per_series=2)))
    study_uid = upload.study_uids[0]
    request_id = str(uuid.uuid4())
    headers = {**world.alice.headers, "X-Request-Id": request_id}
    assert api.delete(f"/studies/{study_uid}", headers=headers).status_code == 200
    entry = AuditEntry.objects.get(request_id=request_id)
    auditor = User.objects.create_user("ivy", password="correct-horse-battery", is_staff=True)
    auditor.groups.add(Group.objects.get(name="Auditors"))

    browser.admin_login(driver, server.url, "ivy", "correct-horse-battery")
    driver.get(f"{server.url}/admin/accounts/auditentry/?outcome__exact=success&organization_slug__exact=acme")
    driver.save_screenshot(str(run_dir / "audit-log.png"))
    assert study_uid in driver.page_source and world.alice.key.prefix in driver.page_source
    driver.find_element(By.LINK_TEXT, str(entry.pk)).click()
    assert request_id in driver.page_source
    assert not driver.find_elements(By.NAME, "_save")  # read-only page: no form to submit
    assert not driver.find_elements(By.CSS_SELECTOR, "a.deletelink")
    driver.get(f"{server.url}/admin/accounts/auditentry/{entry.pk}/delete/")
    assert "403" in driver.title or "Forbidden" in driver.page_source
    driver.get(f"{server.url}/admin/studies/study/")
    assert "Select study to view" in driver.page_source  # studies: view only
    assert AuditEntry.objects.get(pk=entry.pk).entry_hash == entry.entry_hash
