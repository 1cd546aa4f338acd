"""The member's timeline in the member API (profiles/api.py, profiles/timeline.py): each
effect explained, newest first, paged with a cursor."""

import pytest

from rules.programme.load import programme_load
from rules.services.evaluation import members_tier_lapse
from tests.helpers import LAPSE_DAY, local, member_on, spend, tier

pytestmark = pytest.mark.django_db

# Growth points at 1 per 10 yuan; Silver at 2000 spent (or 500 growth points), with a
# coupon, points and a message; Gold lasts a year and is kept by spending 5000 in it.
PROGRAMME = """
earning: {growth_per_unit: 0.1}
tiers:
  - {code: regular, name: 普通会员, rank: 0}
  - {code: silver, name: 银卡会员, rank: 1}
  - {code: gold, name: 金卡会员, rank: 2, validity: days, validity_days: 365,
     keep_threshold: 5000}
coupon_templates:
  - {code: silver-gift, name: 银卡会员升级券, min_spend: 300, amount_off: 50, valid_days: 15}
notification_templates:
  - {code: silver-sms, channel: sms, body: "尊敬的{{ member.name }}，恭喜您升级为{{ tier.name }}！"}
rules:
  - code: silver-at-2000
    name: Silver at 2000
    trigger: order_paid
    fires: every_time
    conditions:
      all:
        - any:
            - {fact: lifetime_spend, op: gte, value: 2000}
            - {fact: growth_points, op: gte, value: 500}
        - {fact: tier_rank, op: lt, value: 1}
    actions:
      - {type: set_tier, tier: silver}
      - {type: issue_coupon, template: silver-gift}
      - {type: award_points, points: 500}
      - {type: notify, template: silver-sms}
"""


@pytest.fixture
def programme() -> None:
    programme_load(PROGRAMME)


def test_the_timeline_explains_each_effect_newest_first(api, programme):
    # given
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    entries = api.get("/api/v1/members/M-1/timeline/").json()["results"]

    # then: the order's own effects are dated by it (placed an hour ago), above it; the
    # firing, its coupon and its message when the rules ran
    types = [entry["type"] for entry in entries]
    assert types == [
        "notification",
        "coupon_issued",
        "rule_fired",
        "tier_change",
        "points",
        "growth_points",  # 60 for SO-2's 600, at 1 per 10 yuan
        "order",
        "growth_points",
        "order",
    ]
    assert [entry["at"] for entry in entries] == sorted((e["at"] for e in entries), reverse=True)
    by_type = {entry["type"]: entry for entry in entries}
    for effect in ("notification", "points", "coupon_issued", "tier_change"):
        assert by_type[effect]["rule"]["code"] == "silver-at-2000"
    assert by_type["tier_change"]["from_tier"] == "regular"
    assert by_type["tier_change"]["to_tier"] == "silver"
    assert by_type["rule_fired"]["facts"] == {
        "lifetime_spend": "2100.00",
        "growth_points": 210,
        "tier_rank": 0,
    }
    assert by_type["rule_fired"]["order"] == "SO-2"
    assert by_type["notification"]["status"] == "sent"
    assert (
        "王先生" in by_type["notification"]["text"]
        and "银卡会员" in by_type["notification"]["text"]
    )


def test_the_timeline_pages_with_a_cursor(api, programme):
    # given: 9 entries (see the test above)
    api.order(external_id="SO-1", amount="1500.00")
    api.order(external_id="SO-2", amount="600.00")

    # when
    pages, before = [], None
    while True:
        params = {"limit": 3, **({"before": before} if before else {})}
        body = api.get("/api/v1/members/M-1/timeline/", params).json()
        pages.append([entry["type"] for entry in body["results"]])
        before = body["next_before"]
        if before is None:
            break

    # then: SO-2's order and its three effects share one moment: shown whole on one page
    assert [len(page) for page in pages] == [3, 4, 2]
    assert pages[1] == ["tier_change", "points", "growth_points", "order"]
    assert pages[-1] == ["growth_points", "order"]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 500}, {"before": "soon"}, {"page": 2}])
def test_bad_timeline_parameters_are_a_400(api, programme, params):
    api.order()
    assert api.get("/api/v1/members/M-1/timeline/", params).status_code == 400


def test_the_timeline_calls_a_lapse_a_downgrade_and_a_renewal_a_renewal(api, programme):
    # given
    kept = member_on(tier("gold"), external_id="M-KEPT")
    spend(kept, "5000", local(2025, 5, 1))
    lost = member_on(tier("gold"), external_id="M-LOST")

    # when
    for member in (kept, lost):
        members_tier_lapse(member_ids=[member.pk], on_date=LAPSE_DAY)

    # then
    for external_id, move in (("M-KEPT", "renewal"), ("M-LOST", "downgrade")):
        results = api.get(f"/api/v1/members/{external_id}/timeline/").json()["results"]
        [entry] = [e for e in results if e["type"] == "tier_change"]
        assert (entry["move"], entry["changed_by"]) == (move, None)
        assert entry["reason"].startswith("renewed" if move == "renewal" else "lapsed")
