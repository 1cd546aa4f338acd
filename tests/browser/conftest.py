"""Debian's chromium, headless, at 1400 x 1000, for the browser tests.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver)."""

import tempfile
from collections.abc import Iterator

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

WIDTH = 1400
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WIDTH},1000",
]


@pytest.fixture
def driver() -> Iterator[WebDriver]:
    with tempfile.TemporaryDirectory(prefix="tierflow-chromium-") as profile:
        options = Options()
        options.binary_location = "/usr/bin/chromium"
        for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        try:
            yield browser
        finally:
            browser.quit()
