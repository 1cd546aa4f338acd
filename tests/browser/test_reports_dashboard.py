"""An analyst opens the reports dashboard in Chromium and finds every chart drawn, in
English and in Simplified Chinese."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from orders.services import order_record
from reports.registry import REPORTS
from rules.programme.load import programme_load
from tests.helpers import REPORTS_PROGRAMME

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 20


def shop() -> None:
    """Members who joined over the last months and ordered, some moving to Silver (a
    coupon and points each), every order thanked by SMS."""
    programme_load(REPORTS_PROGRAMME)
    now = timezone.now()
    for n in range(6):
        member = {"external_id": f"M-{n}", "name": f"会员{n}", "phone": f"1380013800{n}"}
        for k, amount in enumerate(["600.00", "700.00"][: 1 + n % 2]):
            with transaction.atomic():
                order_record(
                    external_id=f"SO-{n}-{k}",
                    member=member,
                    amount=Decimal(amount),
                    currency=settings.TIERFLOW_CURRENCY,
                    placed_at=now - timedelta(days=20 * n + 3 - k),
                )


def log_in(driver: WebDriver, server: str, language: str) -> None:
    user = get_user_model().objects.create_user("analyst", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="Analysts"))
    driver.get(f"{server}/admin/login/?next=/admin/")
    driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
    driver.find_element(By.NAME, "username").send_keys("analyst")
    driver.find_element(By.NAME, "password").send_keys("pw")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "user-tools")))


@pytest.mark.parametrize(("language", "title"), [("en", "Reports"), ("zh-hans", "报表")])
def test_every_chart_is_drawn(driver, live_server, language, title):
    shop()
    log_in(driver, live_server.url, language)

    # the index leads to the dashboard
    driver.find_element(By.CSS_SELECTOR, 'a[href="/admin/reports/dashboard/"]').click()
    WebDriverWait(driver, WAIT_SECONDS).until(
        EC.presence_of_element_located((By.CSS_SELECTOR, ".reports-headline"))
    )
    # each report's section loads after the first screen
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: all(
            body.get_attribute("data-loaded") == "true"
            for body in d.find_elements(By.CSS_SELECTOR, ".section-body")
        )
    )
    charts = driver.find_elements(By.CSS_SELECTOR, ".chart[data-figure]")
    WebDriverWait(driver, WAIT_SECONDS).until(
        lambda d: all(c.get_attribute("data-drawn") == "true" for c in charts)
    )

    drawn = {
        c.find_element(By.XPATH, "./ancestor::section").get_attribute("data-report"): len(
            c.find_elements(By.CSS_SELECTOR, "svg.main-svg")
        )
        for c in charts
    }
    assert set(drawn) == set(REPORTS)  # every report has rows here, so every chart draws
    assert all(count > 0 for count in drawn.values()), drawn
    assert title in driver.title
