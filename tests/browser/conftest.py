"""Debian's chromium, headless, at 1400 x 1000, for the browser tests.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver)."""

import tempfile
from collections.abc import Iterator

import pytest
from django.core.servers.basehttp import WSGIServer
from django.db import connection
from django.test.testcases import LiveServerThread
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


class OneRequestAtATime(WSGIServer):
    """The live server's own thread serves every request (it holds the shared
    connections)."""

    def __init__(self, *args, connections_override=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time_on_sqlite() -> Iterator[None]:
    """An in-memory SQLite database is one connection that the live server's threads
    share, and two requests on it at once (the dashboard loads its sections together)
    hang: there, serve one request at a time. Runs before the session's live server."""
    if connection.vendor != "sqlite":
        yield
        return
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LiveServerThread, "server_class", OneRequestAtATime)
        yield


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
