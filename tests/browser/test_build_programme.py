"""The seed programme built by an operator in the admin, in a real browser: tiers, coupon
and message templates, the Silver upgrade rule (numbered conditions, a logic line, four
actions) and the Gold retention reminder; then the rule's Preview, Test on a member and
Simulate tools on recorded data; then the rule switched on and an order that upgrades a
new member.

Needs /usr/bin/chromium and /usr/bin/chromedriver (Debian: chromium, chromium-driver).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

from benefits.models import Coupon, CouponTemplate, EarningPolicy
from benefits.selectors import growth_balance, points_balance
from benefits.services.growth import growth_award
from members import services as member_services
from members.models import Member, Tier
from notifications.models import Notification, NotificationTemplate
from orders.services import order_record
from rules.models import Rule, RuleFiring, RuleJob
from rules.services.daily import clock_triggers_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

WAIT_SECONDS = 15
SILVER_SMS = "尊敬的{{ member.name }}，恭喜您成功升级为{{ tier.name }}，专属{{ tier.discount_label }}优惠已生效，并为您奉上升级礼券一张！"
GOLD_KEEP_SMS = "尊敬的{{ member.name }}，您的{{ tier.name }}资格将于{{ tier.expires_at|date:'n月j日' }}到期。为您奉上满{{ coupon.min_spend }}减{{ coupon.amount_off }}保级券一张，{{ coupon.expires_at|date:'n月j日' }}前有效，期待您的光临！"


# --- Browser helpers -----------------------------------------------------------------------


def wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=[StaleElementReferenceException])


def visit(driver: WebDriver, url: str) -> None:
    driver.get(url)
    wait(driver).until(EC.presence_of_element_located((By.ID, "content")))


def click_and_load(driver: WebDriver, element: WebElement) -> None:
    """Click something that loads a new page, and wait for that page."""
    old_page = driver.find_element(By.TAG_NAME, "html")
    element.click()
    # While the page is being replaced, Chromium may answer about the old node with a
    # generic error ("Node ... does not belong to the document") rather than "stale".
    WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=[WebDriverException]).until(
        EC.staleness_of(old_page)
    )
    wait(driver).until(EC.presence_of_element_located((By.ID, "content")))


def text_of(driver: WebDriver, css: str) -> str:
    return wait(driver).until(EC.visibility_of_element_located((By.CSS_SELECTOR, css))).text


def fill(driver: WebDriver, values: dict[str, str | bool]) -> None:
    """Fill form fields by name: text is typed, dropdowns are chosen by the label shown,
    booleans tick or untick a checkbox."""
    for name, value in values.items():
        field = wait(driver).until(EC.element_to_be_clickable((By.NAME, name)))
        if isinstance(value, bool):
            if field.is_selected() != value:
                field.click()
        elif field.tag_name == "select":
            Select(field).select_by_visible_text(value)
        else:
            field.clear()
            field.send_keys(value)


def save(driver: WebDriver) -> None:
    """Click Save and check the admin said it saved (else show what it complained about)."""
    click_and_load(driver, driver.find_element(By.NAME, "_save"))
    errors = driver.find_elements(By.CSS_SELECTOR, ".errornote, .errorlist")
    assert not errors, "the admin refused the form: " + " | ".join(e.text for e in errors)
    assert driver.find_elements(By.CSS_SELECTOR, ".messagelist .success")


def add_object(driver: WebDriver, server: str, model: str, values: dict[str, str | bool]) -> None:
    visit(driver, f"{server}/admin/{model}/add/")
    fill(driver, values)
    save(driver)


def log_in(driver: WebDriver, server: str, username: str, password: str) -> None:
    visit(driver, f"{server}/admin/login/?next=/admin/")
    fill(driver, {"username": username, "password": password})
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    assert "Site administration" in text_of(driver, "#content h1")


def inline_row(driver: WebDriver, prefix: str, index: int) -> str:
    """The name prefix of inline row `index` (0-based), adding rows with the admin's
    "Add another ..." link until it exists."""
    while not driver.find_elements(By.NAME, f"{prefix}-{index}-position"):
        rows = len(driver.find_elements(By.CSS_SELECTOR, f"#{prefix}-group tr.form-row"))
        add_link = driver.find_element(
            By.CSS_SELECTOR, f"#{prefix}-group tr.add-row a"
        )  # "Add another Condition"
        assert add_link.text.startswith("Add another")
        add_link.click()
        wait(driver).until(
            lambda d, rows=rows: (
                len(d.find_elements(By.CSS_SELECTOR, f"#{prefix}-group tr.form-row")) > rows
            )
        )
    return f"{prefix}-{index}"


def add_condition(driver: WebDriver, number: int, fact: str, op: str, value: str) -> None:
    row = inline_row(driver, "conditions", number - 1)
    fill(
        driver,
        {
            f"{row}-position": str(number),
            f"{row}-fact": fact,
            f"{row}-op": op,
            f"{row}-value": value,
        },
    )


def add_action(driver: WebDriver, number: int, kind: str, **target: str) -> None:
    row = inline_row(driver, "actions", number - 1)
    fill(
        driver,
        {
            f"{row}-position": str(number),
            f"{row}-kind": kind,
            **{f"{row}-{field}": value for field, value in target.items()},
        },
    )


def open_rule(driver: WebDriver, server: str, rule: Rule) -> None:
    visit(driver, f"{server}/admin/rules/rule/{rule.pk}/change/")


def rule_tool(driver: WebDriver, label: str) -> None:
    """Click one of the tools at the top of a rule's page ("Preview", "Simulate"…)."""
    tools = driver.find_elements(By.CSS_SELECTOR, ".object-tools a")
    [link] = [a for a in tools if a.get_attribute("textContent").strip() == label]
    click_and_load(driver, link)


def try_on_member(driver: WebDriver, external_id: str) -> None:
    """From a rule's page: Test on a member, with the member's external id."""
    rule_tool(driver, "Test on a member")
    fill(driver, {"member": external_id})
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))


def readonly_value(driver: WebDriver, field: str) -> WebElement:
    return driver.find_element(By.CSS_SELECTOR, f".field-{field} .readonly")


def table_rows(element: WebElement) -> list[list[str]]:
    return [
        [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]
        for row in element.find_elements(By.TAG_NAME, "tr")
    ]


# --- The operator's steps ----------------------------------------------------------------


def build_catalogue(driver: WebDriver, server: str) -> None:
    """Earning, tiers, an engagement kind, coupon and message templates, as in seed.yaml."""
    visit(driver, f"{server}/admin/benefits/earningpolicy/")  # goes straight to the policy
    fill(
        driver,
        {
            "growth_per_unit": "0.1",
            "points_expiry": "at the end of the following year",
        },
    )
    save(driver)

    tiers = [
        ("regular", "普通会员", "0", "2", "never lapses", "", ""),
        ("silver", "银卡会员", "1", "5", "a number of days from the upgrade", "365", "1000"),
        ("gold", "金卡会员", "2", "10", "a number of days from the upgrade", "365", "5000"),
    ]
    for code, name, rank, discount, validity, days, keep in tiers:
        values = {
            "code": code,
            "name": name,
            "rank": rank,
            "discount_percent": discount,
            "validity": validity,
        }
        if days:
            values["validity_days"] = days
            values["keep_threshold"] = keep
        add_object(driver, server, "members/tier", values)

    add_object(
        driver,
        server,
        "members/engagementkind",
        {"code": "check-in", "name": "签到", "growth_points": "5", "daily_cap": "1"},
    )
    for code, name, min_spend, amount_off, valid_days in [
        ("silver-gift", "银卡会员升级券", "300", "50", "15"),
        ("gold-keep", "金卡保级券", "500", "100", "15"),
    ]:
        add_object(
            driver,
            server,
            "benefits/coupontemplate",
            {
                "code": code,
                "name": name,
                "min_spend": min_spend,
                "amount_off": amount_off,
                "valid_days": valid_days,
            },
        )
    for code, body in [("silver-sms", SILVER_SMS), ("gold-keep-sms", GOLD_KEEP_SMS)]:
        add_object(
            driver,
            server,
            "notifications/notificationtemplate",
            {"code": code, "channel": "SMS", "body": body},
        )


def build_silver_rule(driver: WebDriver, server: str) -> None:
    visit(driver, f"{server}/admin/rules/rule/add/")
    fill(
        driver,
        {
            "code": "silver-at-2000",
            "name": "累计消费满2000或成长值满500升级银卡",
            "trigger": "order paid",
            "priority": "20",
            "firing_limit": "once per member, ever",
            "logic": "(1 or 2) and 3",
        },
    )
    assert not driver.find_element(By.NAME, "is_active").is_selected()  # a draft
    add_condition(driver, 1, "lifetime spend (net of refunds)", "≥", "2000")
    add_condition(driver, 2, "growth points", "≥", "500")
    add_condition(driver, 3, "tier rank", "<", "1")
    add_action(driver, 1, "set tier", tier="银卡会员")
    add_action(driver, 2, "issue coupon", coupon_template="银卡会员升级券")
    add_action(driver, 3, "award points", points="500")
    add_action(driver, 4, "send message", notification_template="silver-sms")
    save(driver)


def build_retention_rule(driver: WebDriver, server: str) -> None:
    visit(driver, f"{server}/admin/rules/rule/add/")
    fill(
        driver,
        {
            "code": "gold-keep-reminder",
            "name": "金卡到期前15天保级提醒",
            "trigger": "N days before the tier lapses",
            "firing_limit": "every time the trigger happens",
        },
    )
    # No N: Gold's own "remind days before lapsing" (15)
    add_condition(driver, 1, "tier", "=", "gold")
    add_condition(driver, 2, "still needed to keep the tier (0: kept)", ">", "0")
    add_action(driver, 1, "issue coupon", coupon_template="金卡保级券")
    add_action(driver, 2, "send message", notification_template="gold-keep-sms")
    save(driver)


def order(external_id: str, member: str, amount: str, days_ago: float) -> None:
    order_record(
        external_id=external_id,
        member={"external_id": member, "name": f"会员{member}", "phone": "13800138000"},
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(days=days_ago),
    )


def record_members() -> None:
    """Members and orders from the "ERP", while the Silver rule is still a draft."""
    order("SO-BIG-1", "M-BIG", "1500.00", days_ago=10)  # 2300 in all: matches by spend
    order("SO-BIG-2", "M-BIG", "800.00", days_ago=2)
    order("SO-GROWTH-1", "M-GROWTH", "800.00", days_ago=3)  # 80 growth points + 600 below
    order("SO-SMALL-1", "M-SMALL", "300.00", days_ago=1)  # matches nothing
    order("SO-OLD-1", "M-OLD", "2500.00", days_ago=60)  # matches, but outside 30 days
    order("SO-GOLD-1", "M-GOLD", "3000.00", days_ago=40)  # already Gold: rank not < 1
    with transaction.atomic():
        growth = member_services.member_lock(
            member_id=Member.objects.get(external_id="M-GROWTH").pk
        )
        growth_award(member=growth, points=600, reason="points brought over from the old system")
        gold = member_services.member_lock(member_id=Member.objects.get(external_id="M-GOLD").pk)
        member_services.member_set_tier(
            member=gold, tier=Tier.objects.get(code="gold"), reason="by hand", cause="manual"
        )
    # Gold lapses in 15 days: the retention reminder's day.
    Member.objects.filter(pk=gold.pk).update(tier_expires_at=timezone.now() + timedelta(days=15))


# --- The test ------------------------------------------------------------------------------


def test_an_operator_builds_previews_simulates_and_switches_on_the_seed_programme(
    driver, live_server
):
    server = live_server.url
    User.objects.create_superuser("operator", "operator@example.com", "a-long-passphrase")
    log_in(driver, server, "operator", "a-long-passphrase")

    # 1. The catalogue, form by form.
    build_catalogue(driver, server)
    assert EarningPolicy.current().growth_per_unit == Decimal("0.1")
    assert list(Tier.objects.values_list("code", "rank", "discount_percent", "validity_days")) == [
        ("regular", 0, Decimal("2.00"), None),
        ("silver", 1, Decimal("5.00"), 365),
        ("gold", 2, Decimal("10.00"), 365),
    ]
    assert CouponTemplate.objects.get(code="gold-keep").amount_off == Decimal("100.00")
    assert NotificationTemplate.objects.get(code="gold-keep-sms").body == GOLD_KEEP_SMS

    # 2-3. The two rules, with rows added through "Add another ...".
    build_silver_rule(driver, server)
    build_retention_rule(driver, server)
    silver_rule = Rule.objects.get(code="silver-at-2000")
    assert not silver_rule.is_active
    assert silver_rule.logic == "(1 or 2) and 3"
    assert [(c.position, c.fact, c.op, c.value) for c in silver_rule.conditions.all()] == [
        (1, "lifetime_spend", "gte", "2000"),
        (2, "growth_points", "gte", "500"),
        (3, "tier_rank", "lt", "1"),
    ]
    assert [str(a) for a in silver_rule.actions.all()] == [
        "1. set tier",
        "2. issue coupon",
        "3. award points",
        "4. send message",
    ]
    reminder = Rule.objects.get(code="gold-keep-reminder")
    # no N of its own: Gold's 15 days
    assert (reminder.trigger, reminder.trigger_days) == ("tier_expiring", None)
    assert [(c.fact, c.op, c.value) for c in reminder.conditions.all()] == [
        ("tier", "eq", "gold"),
        ("keep_tier_shortfall", "gt", "0"),
    ]
    assert [a.kind for a in reminder.actions.all()] == ["issue_coupon", "notify"]

    # 4. Data for the tools.
    record_members()
    assert not RuleFiring.objects.exists()  # both rules are drafts

    # 5a. Preview: who matches now.
    open_rule(driver, server, silver_rule)
    rule_tool(driver, "Preview")
    assert text_of(driver, "h2.preview-count") == "3 members match the conditions now."
    sample = table_rows(driver.find_element(By.CSS_SELECTOR, "#content-main table"))
    assert [row[0] for row in sample[1:]] == ["M-OLD", "M-BIG", "M-GROWTH"]  # by spend

    # 5b. Test on a member: growth points carry a member below 2000 spend.
    open_rule(driver, server, silver_rule)
    try_on_member(driver, "M-GROWTH")
    verdict = "The rule would fire for this member once it is active."
    assert text_of(driver, "h2.test-verdict") == verdict
    assert "The rule is not active now" in driver.find_element(By.ID, "content-main").text
    results = [
        (row[0], row[1], row[2], row[3])
        for row in table_rows(driver.find_elements(By.CSS_SELECTOR, "#content-main table")[1])
    ]
    assert results == [
        ("1", "lifetime spend (net of refunds) ≥ 2000", "800.00", "✘ false"),
        ("2", "growth points ≥ 500", "680", "✔ true"),
        ("3", "tier rank < 1", "0", "✔ true"),
    ]

    # 5c. Simulate the last 30 days: the job runs, its page shows the result.
    open_rule(driver, server, silver_rule)
    rule_tool(driver, "Simulate")
    fill(driver, {"days": "30"})
    click_and_load(driver, driver.find_element(By.CSS_SELECTOR, "input[type=submit]"))
    wait(driver).until(lambda d: readonly_value(d, "status").text == "done")
    outcome = dict(table_rows(readonly_value(driver, "outcome")))
    # Four orders in 30 days; only M-BIG's second crossed a line at the time (M-GROWTH's
    # 600 growth points came after its order, M-OLD's order is older).
    assert outcome == {
        "occurrences replayed": "4",
        "would have fired": "1",
        "members it would have fired for": "1",
        "coupons": "1",
        "coupon value": "50.00",
        "points": "500",
        "growth points": "0",
        "tier changes": "1",
        "messages": "1",
        "webhook calls": "0",
        "not fired: over budget": "0",
    }
    job = RuleJob.objects.get(rule=silver_rule)
    assert (job.kind, job.status, job.result["firings"]) == ("simulate", "done", 1)
    assert not RuleFiring.objects.exists()  # a simulation writes nothing

    # 6. Switch the rule on; the next order that crosses 2000 upgrades the member.
    open_rule(driver, server, silver_rule)
    fill(driver, {"is_active": True})
    save(driver)
    silver_rule.refresh_from_db()
    assert silver_rule.is_active and silver_rule.version == 2
    open_rule(driver, server, silver_rule)
    try_on_member(driver, "M-BIG")
    assert text_of(driver, "h2.test-verdict") == "The rule would fire for this member."

    order("SO-NEW-1", "M-NEW", "2100.00", days_ago=0.01)
    member = Member.objects.get(external_id="M-NEW")
    assert member.tier.code == "silver"
    assert member.tier_expires_at is not None
    coupon = Coupon.objects.get(member=member)
    assert (coupon.template.code, coupon.amount_off) == ("silver-gift", Decimal("50.00"))
    assert points_balance(member_id=member.pk) == 500
    assert growth_balance(member_id=member.pk) == 210
    sms = Notification.objects.get(member=member)
    assert sms.channel == "sms" and sms.status == "sent"
    assert (
        sms.body
        == "尊敬的会员M-NEW，恭喜您成功升级为银卡会员，专属9.5折优惠已生效，并为您奉上升级礼券一张！"
    )
    assert RuleFiring.objects.get(member=member).rule == silver_rule

    # ...and the member's page says so.
    visit(driver, f"{server}/admin/members/member/{member.pk}/change/")
    assert readonly_value(driver, "tier").text == "银卡会员"
    assert "银卡会员升级券" in driver.find_element(By.ID, "coupons-group").text

    # The retention reminder, switched on, fires on Gold's lapse day minus 15.
    open_rule(driver, server, reminder)
    fill(driver, {"is_active": True})
    save(driver)
    gold = Member.objects.get(external_id="M-GOLD")
    clock_triggers_run(timezone.localdate(gold.tier_expires_at) - timedelta(days=15))
    keep = Coupon.objects.get(member=gold)
    assert (keep.template.code, keep.min_spend, keep.amount_off) == (
        "gold-keep",
        Decimal("500.00"),
        Decimal("100.00"),
    )
    reminder_sms = Notification.objects.get(member=gold)
    lapses = timezone.localtime(gold.tier_expires_at)
    assert reminder_sms.body.startswith(
        f"尊敬的会员M-GOLD，您的金卡会员资格将于{lapses.month}月{lapses.day}日到期。"
        "为您奉上满500减100保级券一张"
    )
