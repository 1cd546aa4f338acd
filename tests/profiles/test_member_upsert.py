from datetime import date, timedelta

import pytest
from django.utils import timezone

from members.models import Member
from rules.models import RuleFiring
from tests.factories import RuleFactory, TierFactory, action

pytestmark = pytest.mark.django_db


def upsert(api, **fields):
    return api.post("/api/v1/members/", {"external_id": "M-1", **fields})


def test_posting_a_new_member_creates_them_on_the_base_tier(api):
    # given: the lowest rank is the base tier
    TierFactory(code="regular", rank=0)
    TierFactory(code="silver", rank=1)

    # when
    joined = timezone.now() - timedelta(days=800)
    response = upsert(
        api, name="李女士", phone="13900001111", birthday="1990-05-06", joined_at=joined.isoformat()
    )

    # then
    assert response.status_code == 201
    body = response.json()
    assert body["tier"]["code"] == "regular"
    assert body["birthday"] == "1990-05-06"
    member = Member.objects.get(external_id="M-1")
    assert member.joined_at == joined
    assert (member.birthday, member.phone) == (date(1990, 5, 6), "+8613900001111")


def test_posting_a_known_member_updates_the_details_given_only(api):
    # given
    upsert(api, name="李女士", phone="13900001111")

    # when
    response = upsert(
        api, email="li@example.com", joined_at=(timezone.now() - timedelta(days=5)).isoformat()
    )

    # then
    assert response.status_code == 200
    member = Member.objects.get(external_id="M-1")
    assert (member.name, member.phone, member.email) == (
        "李女士",
        "+8613900001111",
        "li@example.com",
    )
    assert member.joined_at > timezone.now() - timedelta(minutes=1)  # joining date kept


def test_a_new_member_sets_off_the_member_joined_rules_once(api):
    # given
    welcome = RuleFactory(code="welcome", trigger="member_joined")
    action(welcome, "award_points", points=100)

    # when
    upsert(api, name="李女士")
    upsert(api, name="李女士")

    # then
    member = Member.objects.get(external_id="M-1")
    assert member.is_evaluated
    assert RuleFiring.objects.filter(member=member, rule=welcome).count() == 1
    assert api.get("/api/v1/members/M-1/").json()["points_balance"] == 100


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"birthday": "2999-01-01"}, "birthday"),
        ({"birthday": "May 6th"}, "birthday"),
        ({"joined_at": "2999-01-01T00:00:00Z"}, "joined_at"),
        ({"phone": "12"}, "phone"),
        ({"tier": "gold"}, "tier"),
    ],
)
def test_bad_member_details_are_a_400_and_create_nothing(api, fields, attr):
    TierFactory(code="gold", rank=1)  # a tier that exists is still not the client's to set
    response = upsert(api, **fields)
    assert response.status_code == 400
    assert attr in {error["attr"] for error in response.json()["errors"]}
    assert not Member.objects.exists()
