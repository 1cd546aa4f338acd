"""The operators' busiest admin pages fit a 1400 px wide window: no sideways scrolling on
the rule list, a rule's page, the firings, the outbox and the points ledger, even with
long rule names, long message template names and long ledger reasons.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver).
"""

from datetime import timedelta
from decimal import Decimal
from pprint import pformat

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

from benefits.models import EarningPolicy, PointsEntry
from benefits.services.points import points_award
from members import services as member_services
from notifications.models import Notification
from orders.services import order_record
from rules.models import Rule, RuleFiring
from tests.factories import (
    CouponTemplateFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WIDTH = 1400
WAIT_SECONDS = 15
LONG_NAME = (
    "Upgrade to Silver after cumulative spend of two thousand yuan in any store, online "
    "or offline, including the Double Eleven campaign weeks"
)
LONG_CHINESE_NAME = "累计消费满两千元自动升级银卡会员并赠送满三百减五十优惠券及五百积分奖励活动规则"
LONG_TEMPLATE_NAME = "Silver upgrade congratulations SMS with the coupon and the points awarded"
LONG_REASON = (
    "points brought over from the old loyalty system after the 2024 merger of the "
    "northern and southern store chains, checked by the finance team"
)

# What would make an operator scroll sideways: the page wider than the window, a box on
# it that scrolls, a table wider than its box; and, for the failure message, what sticks
# out of the window. Also the page's language.
OVERFLOW_SCRIPT = """
const root = document.documentElement;
const boxes = [];
for (const el of document.querySelectorAll("body *")) {
  const style = getComputedStyle(el);
  const scrolls = ["auto", "scroll"].includes(style.overflowX);
  if (scrolls && el.scrollWidth > el.clientWidth + 1) {
    boxes.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className}: ${el.scrollWidth} > ${el.clientWidth}`);
  }
}
const tables = [];
for (const table of document.querySelectorAll("#content table")) {
  const box = table.parentElement;
  if (table.offsetWidth > box.clientWidth + 1) {
    tables.push(`table in ${box.tagName.toLowerCase()}.${box.className}: ${table.offsetWidth} > ${box.clientWidth}`);
  }
}
const wide = [];
for (const el of document.querySelectorAll("#content *")) {
  const right = el.getBoundingClientRect().right;
  if (right > window.innerWidth + 1) wide.push([right, el.tagName.toLowerCase() + "." + el.className]);
}
wide.sort((a, b) => b[0] - a[0]);
return {
  language: root.lang,
  scrollWidth: root.scrollWidth,
  innerWidth: window.innerWidth,
  boxes: boxes,
  tables: tables,
  widest: wide.slice(0, 5).map(w => `${Math.round(w[0])}px ${w[1]}`),
};
"""


def log_in(driver: WebDriver, server: str, language: str) -> None:
    """As a superuser, in `language` (Django's language cookie)."""
    User.objects.create_superuser("boss", "boss@example.com", "pw")
    driver.get(f"{server}/admin/login/?next=/admin/")
    driver.add_cookie({"name": settings.LANGUAGE_COOKIE_NAME, "value": language})
    driver.find_element(By.NAME, "username").send_keys("boss")
    driver.find_element(By.NAME, "password").send_keys("pw")
    driver.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    WebDriverWait(driver, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "user-tools")))


def overflow(driver: WebDriver, server: str, path: str) -> dict:
    driver.get(server + path)
    WebDriverWait(driver, WAIT_SECONDS).until(EC.presence_of_element_located((By.ID, "content")))
    return driver.execute_script(OVERFLOW_SCRIPT)


def programme() -> Rule:
    """Two rules with long names (one in Chinese) that fire on every order, awarding
    points and sending a message from a long-named template; one also moves the member
    up, issues a coupon and calls a long webhook URL. Eight more rules, as drafts."""
    silver = TierFactory(code="silver", name="银卡会员", rank=1)
    TierFactory(code="regular", name="普通会员", rank=0)
    coupon = CouponTemplateFactory(name="满300减50 升级礼券（全场通用，不含特价商品）")
    message = NotificationTemplateFactory(
        code="silver-upgrade-congratulations-sms",
        name=LONG_TEMPLATE_NAME,
        body="尊敬的{{ member.name }}，恭喜您成功升级为银卡会员，专属优惠已生效，并为您奉上升级礼券一张！",
    )
    upgrade = RuleFactory(
        code="silver-upgrade-after-cumulative-spend-of-2000-cny",
        name=LONG_NAME,
        description="Moves members to Silver. " * 20,
        firing_limit="every_time",
        priority=10,
        budget=100000,
    )
    condition(upgrade, "lifetime_spend", "gte", "100")
    condition(upgrade, "spend_in_days", "gte", "50", days=365)
    action(upgrade, "set_tier", tier=silver)
    action(upgrade, "issue_coupon", coupon_template=coupon)
    action(upgrade, "award_points", points=500)
    action(upgrade, "notify", notification_template=message)
    action(upgrade, "webhook", webhook_url="https://erp.example.com/hooks/tierflow/" + "x" * 80)
    chinese = RuleFactory(
        code="double-eleven-bonus-points-for-every-paid-order",
        name=LONG_CHINESE_NAME,
        firing_limit="every_time",
    )
    action(chinese, "award_points", points=50)
    action(chinese, "notify", notification_template=message)
    for n in range(8):
        RuleFactory(name=f"{LONG_NAME} (variant {n})", is_active=False)
    return upgrade


def activity() -> None:
    """Members' orders earn points that lapse after a year and fire the rules; some points
    come in by hand with a long reason."""
    EarningPolicy.objects.update_or_create(
        pk=1,
        defaults={
            "points_per_unit": Decimal(1),
            "growth_per_unit": Decimal("0.1"),
            "points_expiry": EarningPolicy.Expiry.DAYS,
            "points_valid_days": 365,
        },
    )
    for n in range(6):
        order_record(
            external_id=f"SO-2025-11-11-NORTH-{n:06d}",
            member={
                "external_id": f"ERP-CUSTOMER-{n:010d}",
                "name": f"会员{n}",
                "phone": "13800138000",
            },
            amount=Decimal("2500.00"),
            currency="CNY",
            placed_at=timezone.now() - timedelta(hours=n + 1),
        )
    for member_id in RuleFiring.objects.values_list("member_id", flat=True).distinct()[:3]:
        with transaction.atomic():
            member = member_services.member_lock(member_id=member_id)
            points_award(
                member=member, points=12000, reason=LONG_REASON, policy=EarningPolicy.current()
            )


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_the_operators_pages_fit_a_1400_pixel_window(driver, live_server, language):
    # given
    rule = programme()
    activity()
    assert RuleFiring.objects.count() >= 10
    assert Notification.objects.count() >= 10
    assert PointsEntry.objects.filter(reason=LONG_REASON).exists()
    assert PointsEntry.objects.filter(expires_at__isnull=False).exists()
    log_in(driver, live_server.url, language)
    pages = {
        "rule list": reverse("admin:rules_rule_changelist"),
        "rule page": reverse("admin:rules_rule_change", args=[rule.pk]),
        "firings": reverse("admin:rules_rulefiring_changelist"),
        "outbox": reverse("admin:notifications_notification_changelist"),
        "points ledger": reverse("admin:benefits_pointsentry_changelist"),
    }

    # when
    measured = {name: overflow(driver, live_server.url, path) for name, path in pages.items()}

    # then
    assert {page.pop("language") for page in measured.values()} == {language}
    too_wide = {
        name: page
        for name, page in measured.items()
        if page["scrollWidth"] > page["innerWidth"] or page["boxes"] or page["tables"]
    }
    assert too_wide == {}, pformat(too_wide)
