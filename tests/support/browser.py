"""Headless Chromium from Debian's packages (chromium, chromium-driver), driven by Selenium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait


def chromium(profile_dir: Path) -> Iterator[WebDriver]:
    binary, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver_path is None:
        if os.environ.get("PRIZMED_REQUIRE_SERVICES") == "1":
            pytest.fail("browser tests need Debian's chromium and chromium-driver")
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile_dir}", "--window-size=1280,900",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console_errors() reads them
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def admin_login(driver: WebDriver, base_url: str, username: str, password: str) -> None:
    driver.get(f"{base_url}/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(username)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    # Wait for the page after login, so the caller's next step does not race the navigation.
    WebDriverWait(driver, 20).until(lambda d: "/admin/login/" not in d.current_url)


def console_errors(driver: WebDriver) -> list[str]:
    """The page's console messages at SEVERE level since the last call (for failure messages)."""
    entries: list[dict[str, str]] = driver.get_log("browser")  # type: ignore[attr-defined]  # Chromium's, untyped
    return [entry["message"] for entry in entries if entry["level"] == "SEVERE"]
