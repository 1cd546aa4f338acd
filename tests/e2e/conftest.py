from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command

from reports.models import RollupMark
from rules.programme.load import programme_load


@pytest.fixture(autouse=True)
def reports_verified(transactional_db):
    """Around each end-to-end test: the reports' roll-up marked as done before anything
    was recorded, so rolling up after the test catches up with everything the test and
    its workers recorded, one changed bucket at a time; `reports_verify` must then find
    the figures equal to the raw rows (it raises if not)."""
    RollupMark.objects.create(pk=1, recorded_before=datetime(2000, 1, 1, tzinfo=UTC))
    yield
    call_command("reports_rollup", "--lag", "0", stdout=StringIO(), stderr=StringIO())
    out = StringIO()
    call_command("reports_verify", stdout=out)
    assert "No differences" in out.getvalue()


@pytest.fixture(autouse=True)
def balances_verified(transactional_db):
    """After each end-to-end test, with its data still there: `verify_balances` must find
    no drift between the running totals, the orders and the ledgers (it raises if so)."""
    yield
    out = StringIO()
    call_command("verify_balances", stdout=out)
    assert "No drift" in out.getvalue()


# What the end-to-end tests assert on, in view: Silver at 2000 of lifetime spend, with a
# "spend 300, 50 off, 15 days" coupon, 500 points and an SMS naming the member and tier.
SILVER_AT_2000 = """
earning: {points_per_unit: 0, growth_per_unit: 0}
tiers:
  - {code: regular, name: 普通会员, rank: 0}
  - {code: silver, name: 银卡会员, rank: 1, discount_percent: 5}
coupon_templates:
  - {code: silver-gift, name: 银卡礼券, min_spend: 300, amount_off: 50, valid_days: 15}
notification_templates:
  - code: silver-sms
    channel: sms
    body: "尊敬的{{ member.name }}，恭喜您升级为{{ tier.name }}，专属{{ tier.discount_label }}优惠已生效！"
rules:
  - code: silver-at-2000
    name: 累计消费满2000升级银卡
    trigger: order_paid
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 2000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: issue_coupon, template: silver-gift}
      - {type: award_points, points: 500}
      - {type: notify, template: silver-sms}
"""


@pytest.fixture
def silver_at_2000(transactional_db) -> None:
    programme_load(SILVER_AT_2000)
