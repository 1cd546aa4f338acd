"""Preview and "test on a member" for tier_changed rules: the triggering change is the
member's latest, and testing writes nothing."""

from decimal import Decimal

import pytest
from django.urls import reverse

from members.models import Tier
from rules.models import Rule, RuleFiring
from rules.services.evaluation import members_tier_lapse
from tests.factories import (
    MemberFactory,
    NotificationTemplateFactory,
    RuleFactory,
    TierFactory,
    action,
    condition,
)
from tests.helpers import LAPSE_DAY, local, member_on, spend

pytestmark = pytest.mark.django_db


@pytest.fixture
def tiers() -> dict[str, Tier]:
    """Silver and Gold kept for a year by spending 1000 and 5000 in it."""
    year = {"validity": "days", "validity_days": 365}
    return {
        "regular": TierFactory(code="regular", name="普通会员", rank=0),
        "silver": TierFactory(
            code="silver", name="银卡会员", rank=1, keep_threshold=Decimal(1000), **year
        ),
        "gold": TierFactory(
            code="gold", name="金卡会员", rank=2, keep_threshold=Decimal(5000), **year
        ),
    }


@pytest.fixture
def lapsed_rule(tiers) -> Rule:
    """A message when the tier moves down."""
    rule = RuleFactory(code="tier-lapsed", trigger="tier_changed", firing_limit="every_time")
    condition(rule, "tier_move", "lt", 0)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    return rule


@pytest.fixture
def renewed_rule(tiers) -> Rule:
    """A message when a tier above the base one is renewed."""
    rule = RuleFactory(code="tier-renewed", trigger="tier_changed", firing_limit="every_time")
    condition(rule, "tier_move", "eq", 0)
    condition(rule, "tier_rank", "gt", 0)
    action(rule, "notify", notification_template=NotificationTemplateFactory())
    return rule


def test_testing_the_tier_lapsed_rule_on_a_member_who_moved_down(
    admin_client, tiers, lapsed_rule, renewed_rule
):
    # given: a Gold member who lapsed to Silver, and one who was renewed
    lost = member_on(tiers["gold"], external_id="M-LOST")
    spend(lost, "1200", local(2025, 5, 1))
    kept = member_on(tiers["gold"], external_id="M-KEPT")
    spend(kept, "5000", local(2025, 5, 1))
    for member in (lost, kept):
        members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)
    firings = RuleFiring.objects.count()

    def verdict(rule, external_id):
        url = reverse("admin:rules_rule_test", args=[rule.pk])
        response = admin_client.get(url, {"member": external_id})
        assert response.status_code == 200
        return response.content.decode()

    # when
    lapsed_on_lost = verdict(lapsed_rule, "M-LOST")
    lapsed_on_kept = verdict(lapsed_rule, "M-KEPT")
    renewed_on_kept = verdict(renewed_rule, "M-KEPT")
    preview = admin_client.get(reverse("admin:rules_rule_preview", args=[lapsed_rule.pk]))

    # then: the lapse evaluated each move's rules as it made it, so the test finds each
    # rule's conditions as they were met, and the firing already made
    assert RuleFiring.objects.filter(rule=lapsed_rule, member=lost).exists()
    assert RuleFiring.objects.filter(rule=renewed_rule, member=kept).exists()
    assert "It already fired for this member" in lapsed_on_lost
    assert "Triggering change: the latest, 金卡会员 → 银卡会员." in lapsed_on_lost
    assert "The rule would not fire for this member." in lapsed_on_kept
    assert "It already fired for this member" not in lapsed_on_kept
    assert "Triggering change: the latest, 金卡会员 → 金卡会员." in lapsed_on_kept
    assert "It already fired for this member" in renewed_on_kept
    assert preview.status_code == 200
    assert "are about the triggering event and are counted as met" in preview.content.decode()
    assert RuleFiring.objects.count() == firings  # testing writes nothing


def test_testing_a_tier_changed_rule_on_a_member_whose_tier_never_changed(
    admin_client, tiers, lapsed_rule
):
    # given
    MemberFactory(external_id="M-NEW", tier=tiers["regular"])

    # when
    url = reverse("admin:rules_rule_test", args=[lapsed_rule.pk])
    response = admin_client.get(url, {"member": "M-NEW"})

    # then
    assert response.status_code == 200
    assert "The member&#x27;s tier has never changed." in response.content.decode()
    assert response.context["explanation"].notes == ["The member's tier has never changed."]
