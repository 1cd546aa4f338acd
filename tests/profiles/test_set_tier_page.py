"""The member admin's "Set tier…" page (profiles/admin.py): the form, the tier it sets
and the member it goes back to, the mistakes it explains, and who may use it."""

from datetime import date

import pytest
import time_machine
from django.contrib.auth.models import Permission, User
from django.urls import reverse

from members.models import Member, Tier, TierChange
from tests.factories import MemberFactory, TierFactory
from tests.helpers import local

pytestmark = pytest.mark.django_db


NOW = local(2025, 3, 10, 15)


@pytest.fixture
def tiers() -> dict[str, Tier]:
    return {
        "regular": TierFactory(code="regular", name="普通会员", rank=0),
        "silver": TierFactory(code="silver", name="银卡会员", rank=1),
        "gold": TierFactory(code="gold", name="金卡会员", rank=2),
    }


def set_tier_url(member: Member) -> str:
    return reverse("admin:members_member_set_tier", args=[member.pk])


def test_the_set_tier_page_shows_the_form_and_the_current_tier(admin_client, tiers):
    member = MemberFactory(
        tier=tiers["silver"], tier_floor=tiers["regular"], tier_floor_until=date(2099, 1, 1)
    )
    change_page = admin_client.get(reverse("admin:members_member_change", args=[member.pk]))
    response = admin_client.get(set_tier_url(member))
    text = response.content.decode()
    assert response.status_code == 200
    assert f'href="{set_tier_url(member)}"' in change_page.content.decode()
    assert "Now on: 银卡会员." in text
    assert "Never below 普通会员 until" in text
    for name in ("tier", "reason", "tier_floor", "floor_until"):
        assert f'name="{name}"' in text
    assert response.context["form"].initial["tier"] == tiers["silver"]


def test_posting_the_set_tier_form_sets_the_tier_and_goes_back_to_the_member(admin_client, tiers):
    # given
    member = MemberFactory(tier=tiers["regular"])

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client.post(
            set_tier_url(member),
            {
                "tier": tiers["gold"].pk,
                "reason": "store manager's decision",
                "tier_floor": tiers["silver"].pk,
                "floor_until": "2025-12-31",
            },
        )

    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:members_member_change", args=[member.pk])
    member.refresh_from_db()
    assert (member.tier.code, member.tier_floor.code, member.tier_floor_until) == (
        "gold",
        "silver",
        date(2025, 12, 31),
    )
    change = TierChange.objects.get(member=member)
    assert change.changed_by.username == "boss"
    assert change.reason == "store manager's decision (never below 银卡会员 until 2025-12-31)"


@pytest.mark.parametrize(
    ("data", "field", "error"),
    [
        ({"reason": ""}, "reason", "This field is required."),
        ({"tier_floor": "silver"}, "floor_until", "Give both the floor tier and its end date."),
        (
            {"tier_floor": "gold", "floor_until": "2025-12-31"},
            "tier_floor",
            "The floor cannot be above the tier set.",
        ),
        ({"tier_floor": "regular", "floor_until": "2025-01-01"}, "floor_until", "has passed"),
    ],
)
def test_a_set_tier_form_with_mistakes_shows_them_and_changes_nothing(
    admin_client, tiers, data, field, error
):
    # given
    member = MemberFactory(tier=tiers["regular"])
    posted = {"tier": tiers["silver"].pk, "reason": "because", **data}
    if "tier_floor" in data:
        posted["tier_floor"] = tiers[data["tier_floor"]].pk

    # when
    with time_machine.travel(NOW, tick=False):
        response = admin_client.post(set_tier_url(member), posted)

    # then
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert any(error in message for message in errors[field])
    assert error.replace("'", "&#x27;") in response.content.decode()
    member.refresh_from_db()
    assert (member.tier.code, member.tier_floor) == ("regular", None)
    assert not TierChange.objects.exists()


def test_staff_who_may_only_view_members_cannot_set_a_tier(client, tiers):
    # given
    viewer = User.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_member"))
    client.force_login(viewer)
    member = MemberFactory(tier=tiers["regular"])

    # when
    shown = client.get(set_tier_url(member))
    posted = client.post(set_tier_url(member), {"tier": tiers["gold"].pk, "reason": "why not"})

    # then
    assert (shown.status_code, posted.status_code) == (403, 403)
    member.refresh_from_db()
    assert member.tier.code == "regular"
    assert not TierChange.objects.exists()
