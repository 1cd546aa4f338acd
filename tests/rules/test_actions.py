"""Actions: what a firing does, each through the owning app's service."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.utils import timezone

from benefits.models import Coupon, GrowthEntry, PointsEntry
from benefits.services.points import earning_policy_update
from members.models import Member, Tag, TierChange
from notifications.models import Notification
from orders.models import Order
from orders.services import order_record
from rules.models import RuleFiring
from rules.services.evaluation import member_evaluate
from tests.factories import (
    CouponTemplateFactory,
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 3, 10, 12, 0, tzinfo=SHANGHAI)


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def record(member, amount="100") -> Order:
    order, _ = order_record(
        external_id=f"SO-{Order.objects.count() + 1}",
        member=member.external_id,
        amount=Decimal(amount),
        currency="CNY",
        placed_at=timezone.now() - timedelta(minutes=5),
    )
    return order


def fire(member, amount="100") -> RuleFiring | None:
    """Record and evaluate an order; the firing of the one rule, if it fired."""
    order = record(member, amount)
    member_evaluate(member_id=member.pk, trigger="order_paid", subject_id=order.pk)
    return RuleFiring.objects.filter(order=order).first()


def fresh(member) -> Member:
    return Member.objects.select_related("tier").get(pk=member.pk)


# --- set_tier -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("validity", "now", "expires_at"),
    [
        ({"validity": "forever"}, NOW, None),
        # days: to the first midnight (here) at least that many days later
        ({"validity": "days", "validity_days": 365}, NOW, local(2026, 3, 11, 0, 0)),
        (
            {"validity": "days", "validity_days": 365},
            local(2025, 3, 10, 0, 0),
            local(2026, 3, 10, 0, 0),
        ),
        ({"validity": "calendar_year"}, NOW, local(2026, 1, 1, 0, 0)),
        # 23:30 on 31 December here is still 2025 in UTC too, but 00:00 on 1 January
        # is the end of the local calendar year
        ({"validity": "calendar_year"}, local(2025, 12, 31, 23, 30), local(2026, 1, 1, 0, 0)),
        # 16:30 UTC on 31 December is 00:30 on 1 January 2026 here: valid to the end of 2026
        (
            {"validity": "calendar_year"},
            datetime(2025, 12, 31, 16, 30, tzinfo=UTC),
            local(2027, 1, 1, 0, 0),
        ),
    ],
)
def test_set_tier_upgrades_and_starts_the_tiers_validity(validity, now, expires_at):
    # given
    regular = TierFactory(code="regular", rank=0)
    silver = TierFactory(code="silver", rank=1, **validity)
    rule = RuleFactory(code="to-silver")
    action(rule, "set_tier", tier=silver)
    member = MemberFactory(tier=regular)

    # when
    with time_machine.travel(now, tick=False):
        firing = fire(member)

    # then: the period starts when the order was placed (five minutes before)
    member = fresh(member)
    assert member.tier == silver
    assert member.tier_since == now - timedelta(minutes=5)
    assert member.tier_expires_at == expires_at
    change = TierChange.objects.get(member=member)
    assert (change.from_tier, change.to_tier, change.firing) == (regular, silver, firing)
    assert change.reason == "rule to-silver"


def test_set_tier_does_not_move_a_member_down_unless_allowed():
    # given
    silver = TierFactory(code="silver", rank=1)
    gold = TierFactory(code="gold", rank=2, validity="days", validity_days=30)
    keep = RuleFactory(code="keep", priority=1)
    action(keep, "set_tier", tier=silver)
    member = MemberFactory(tier=gold, tier_expires_at=NOW)

    # when
    fire(member)
    stayed = fresh(member).tier
    down = RuleFactory(code="down", priority=2)
    action(down, "set_tier", tier=silver, allow_downgrade=True)
    fire(member)

    # then
    member = fresh(member)
    assert stayed == gold
    assert member.tier == silver
    assert member.tier_expires_at is None  # Silver never lapses
    assert list(TierChange.objects.values_list("to_tier__code", flat=True)) == ["silver"]


def test_set_tier_to_the_current_tier_changes_nothing():
    # given
    silver = TierFactory(code="silver", rank=1, validity="days", validity_days=30)
    since = NOW - timedelta(days=10)
    member = MemberFactory(tier=silver, tier_since=since, tier_expires_at=since + timedelta(30))
    rule = RuleFactory()
    action(rule, "set_tier", tier=silver)

    # when
    firing = fire(member)

    # then
    member = fresh(member)
    assert firing is not None
    assert (member.tier_since, member.tier_expires_at) == (since, since + timedelta(30))
    assert not TierChange.objects.exists()


def test_set_tier_gives_a_member_without_a_tier_their_first():
    gold = TierFactory(code="gold", rank=2)
    rule = RuleFactory()
    action(rule, "set_tier", tier=gold)
    member = MemberFactory(tier=None)
    fire(member)
    assert fresh(member).tier == gold


# --- coupons, points, growth points ---------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_issue_coupon_copies_the_templates_terms_and_expires_after_valid_days():
    # given
    template = CouponTemplateFactory(
        name="满300减50", min_spend=Decimal(300), amount_off=Decimal(50), valid_days=15
    )
    rule = RuleFactory()
    action(rule, "issue_coupon", coupon_template=template)
    member = MemberFactory()

    # when
    firing = fire(member)
    template.amount_off, template.valid_days = Decimal(80), 30
    template.save()

    # then: later changes to the template change no coupon in hand
    coupon = Coupon.objects.get(member=member)
    assert (coupon.name, coupon.min_spend, coupon.amount_off) == (
        "满300减50",
        Decimal("300.00"),
        Decimal("50.00"),
    )
    assert (coupon.issued_at, coupon.expires_at) == (NOW, NOW + timedelta(days=15))
    assert (coupon.status, coupon.firing, coupon.template) == ("issued", firing, template)


@pytest.mark.parametrize(
    ("policy", "expires_at"),
    [
        ({"points_expiry": "never"}, None),
        # to the first midnight (here) at least 90 days later
        ({"points_expiry": "days", "points_valid_days": 90}, local(2025, 6, 9, 0, 0)),
        ({"points_expiry": "end_of_following_year"}, local(2027, 1, 1, 0, 0)),
    ],
)
def test_award_points_adds_a_bonus_entry_expiring_per_the_earning_policy(policy, expires_at):
    # given
    earning_policy_update(**policy)
    rule = RuleFactory(code="bonus-500")
    action(rule, "award_points", points=500)
    member = MemberFactory()

    # when
    with time_machine.travel(NOW, tick=False):
        firing = fire(member)

    # then
    entry = PointsEntry.objects.get(member=member)
    assert (entry.kind, entry.points, entry.firing) == ("bonus", 500, firing)
    assert entry.expires_at == expires_at
    assert entry.reason == "rule bonus-500"


def test_award_growth_points_adds_a_bonus_growth_entry():
    # given
    rule = RuleFactory()
    action(rule, "award_growth_points", points=120)
    member = MemberFactory()

    # when
    firing = fire(member)

    # then
    entry = GrowthEntry.objects.get(member=member)
    assert (entry.kind, entry.points, entry.firing) == ("bonus", 120, firing)


# --- messages -------------------------------------------------------------------------


def test_notify_renders_the_template_with_what_the_rule_just_did():
    # given: an upgrade with a coupon and points, then the message
    silver = TierFactory(code="silver", name="银卡会员", rank=1, discount_percent=5)
    template = NotificationTemplateFactory(
        channel="sms",
        body=(
            "{{ member.name }}升级为{{ tier.name }}({{ tier.discount_label }})，"
            "满{{ coupon.min_spend }}减{{ coupon.amount_off }}，{{ points }}积分，"
            "订单{{ order.external_id }}"
        ),
    )
    rule = RuleFactory()
    action(rule, "set_tier", tier=silver)
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    action(rule, "award_points", points=200)
    action(rule, "award_points", points=300)
    action(rule, "notify", notification_template=template)
    member = MemberFactory(name="王先生", tier=TierFactory(code="regular", rank=0))

    # when
    firing = fire(member)

    # then
    notification = Notification.objects.get(member=member)
    assert notification.body == "王先生升级为银卡会员(9.5折)，满300减50，500积分，订单SO-1"
    assert (notification.channel, notification.status) == ("sms", "queued")
    assert (notification.template, notification.firing) == (template, firing)


@pytest.mark.parametrize(
    ("override", "channel"), [("", "sms"), ("push", "push"), ("email", "email")]
)
def test_notify_uses_the_actions_channel_over_the_templates(override, channel):
    # given
    template = NotificationTemplateFactory(channel="sms", body="{{ member.name }}")
    rule = RuleFactory()
    action(rule, "notify", notification_template=template, channel=override)
    member = MemberFactory(email="wang@example.com")

    # when
    fire(member)

    # then
    assert Notification.objects.get(member=member).channel == channel


# --- tags -----------------------------------------------------------------------------


def test_add_tag_and_remove_tag():
    # given
    vip, trial = (
        Tag.objects.create(code="vip", name="VIP"),
        Tag.objects.create(code="trial", name="试用"),
    )
    rule = RuleFactory()
    action(rule, "add_tag", tag=vip)
    action(rule, "remove_tag", tag=trial)
    tagged, untagged = MemberFactory(), MemberFactory()
    tagged.tags.add(trial)

    # when
    fire(tagged)
    fire(untagged)

    # then
    assert set(tagged.tags.values_list("code", flat=True)) == {"vip"}
    assert set(untagged.tags.values_list("code", flat=True)) == {"vip"}


def test_a_later_action_in_the_rule_sees_an_earlier_ones_tag():
    # given: one rule tags, a lower-priority rule needs the tag
    vip = Tag.objects.create(code="vip", name="VIP")
    tagger = RuleFactory(code="tagger", priority=1)
    action(tagger, "add_tag", tag=vip)
    follower = RuleFactory(code="follower", priority=2)
    condition(follower, "tags", "in", "vip")
    action(follower, "award_points", points=1)
    member = MemberFactory()

    # when
    fire(member)

    # then
    codes = RuleFiring.objects.order_by("pk").values_list("rule__code", flat=True)
    assert list(codes) == ["tagger", "follower"]


# --- webhook --------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_webhook_queues_the_json_event_on_the_webhook_channel():
    # given
    gold = TierFactory(code="gold", rank=2)
    rule = RuleFactory(code="gold-hook", name="金卡通知")
    action(rule, "set_tier", tier=gold)
    action(rule, "issue_coupon", coupon_template=CouponTemplateFactory())
    action(rule, "award_points", points=2000)
    action(rule, "webhook", webhook_url="https://erp.example.com/hooks/tierflow")
    member = MemberFactory(external_id="M-42")

    # when
    firing = fire(member, "12000")

    # then
    notification = Notification.objects.get(member=member)
    coupon = Coupon.objects.get(member=member)
    assert (notification.channel, notification.url, notification.template) == (
        "webhook",
        "https://erp.example.com/hooks/tierflow",
        None,
    )
    assert (notification.status, notification.firing) == ("queued", firing)
    assert json.loads(notification.body) == {
        "type": "rule.fired",
        "rule": {"code": "gold-hook", "name": "金卡通知", "version": rule.version},
        "member": "M-42",
        "tier": "gold",
        "trigger": "order_paid",
        "order": "SO-1",
        "coupon": coupon.code,
        "points": 2000,
        "fired_at": "2025-03-10T12:00:00+08:00",
    }
