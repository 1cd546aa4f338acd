"""The member API shows progress towards keeping the tier in its current period."""

import pytest
from django.utils import timezone

from rules.programme.load import programme_load

pytestmark = pytest.mark.django_db

# Regular, with no threshold; Silver at 2000 spent, kept by spending 1000 in its year.
PROGRAMME = """
tiers:
  - {code: regular, name: Regular, rank: 0}
  - {code: silver, name: Silver, rank: 1, validity: days, validity_days: 365,
     keep_threshold: 1000}
rules:
  - code: silver-at-2000
    name: Silver at 2000
    trigger: order_paid
    conditions:
      all:
        - {fact: lifetime_spend, op: gte, value: 2000}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
"""


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


def test_a_members_keep_tier_progress_counts_spend_in_the_period_net_of_refunds(api, programme):
    # given: Silver (keep with 1000 spent in the year) from the 2100 order itself
    api.order(external_id="SO-1", amount="2100.00")
    api.order(external_id="SO-2", amount="300.00", placed_at=timezone.now().isoformat())
    api.post("/api/v1/orders/SO-2/refunds/", {"external_id": "R-1", "amount": "100.00"})

    # when
    member = api.get("/api/v1/members/M-1/").json()

    # then: the period started with the upgrade, when SO-1 was evaluated: only SO-2,
    # placed after it, counts in it
    assert member["tier"]["code"] == "silver"
    keep = member["keep_tier"]
    assert (keep["measure"], keep["threshold"]) == ("spend", "1000.00")
    assert (keep["reached"], keep["shortfall"]) == ("200.00", "800.00")
    assert keep["period_start"] == member["tier_since"]


def test_a_tier_without_a_threshold_shows_no_keep_tier_progress(api, programme):
    api.order(external_id="SO-1", amount="100.00")
    assert api.get("/api/v1/members/M-1/").json()["keep_tier"] is None
