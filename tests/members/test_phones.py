"""One phone normaliser (E.164) on every path: the API, the admin, the opt-out lookup,
the stored rows and the providers."""

import pytest
from django.contrib import admin
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse

from members.models import Member
from members.phones import phone_national, phone_normalised
from notifications.models import Consent
from tests.factories import MemberFactory


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("13800138000", "+8613800138000"),
        ("138 0013 8000", "+8613800138000"),
        ("+86 138-0013-8000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("１３８００１３８０００", "+8613800138000"),
        ("+852 9123 4567", "+85291234567"),
        ("+1 (415) 555-0123", "+14155550123"),
        ("12ab", "12ab"),  # not a number: left for the validator to refuse
        ("12", "12"),
    ],
)
def test_numbers_are_normalised_to_e164(given, stored):
    assert phone_normalised(given) == stored


def test_a_provider_of_the_default_country_gets_national_digits():
    assert phone_national("+8613800138000") == "13800138000"
    assert phone_national("+85291234567") == "85291234567"


@pytest.mark.django_db
def test_an_opt_out_finds_the_member_whatever_form_either_number_took(api):
    # given
    member = MemberFactory(external_id="M-1", phone="13800138000")

    # when
    response = api.post(reverse("consent-opt-out"), {"phone": "+8613800138000"})

    # then
    assert response.status_code == 200, response.content
    assert response.json() == {"members": 1}
    assert Consent.objects.get(member=member).granted is False
    assert Member.objects.filter(phone="138 0013 8000").get() == member


@pytest.mark.django_db
def test_the_api_and_the_admin_take_a_number_the_same_way(api, admin_user, rf):
    # given
    request = rf.get("/")
    request.user = admin_user
    form_class = admin.site._registry[Member].get_form(request)

    # when
    api.post("/api/v1/members/", {"external_id": "M-API", "phone": "+86 13800138000"})
    form = form_class(
        {
            "external_id": "M-ADMIN",
            "name": "李",
            "phone": "138-0013-8000",
            "joined_at_0": "2026-01-01",
            "joined_at_1": "10:00:00",
        }
    )

    # then
    assert form.is_valid(), form.errors
    assert form.cleaned_data["phone"] == Member.objects.get(external_id="M-API").phone
    assert form.cleaned_data["phone"] == "+8613800138000"


@pytest.mark.django_db(transaction=True)
def test_the_migration_rewrites_stored_numbers_in_e164():
    # given: the schema before E.164, with numbers as they used to be stored
    executor = MigrationExecutor(connection)
    executor.migrate([("members", "0004_journal")])
    old = executor.loader.project_state([("members", "0004_journal")]).apps
    OldMember = old.get_model("members", "Member")
    OldMember.objects.create(external_id="M-1", phone="13800138000")
    OldMember.objects.create(external_id="M-2", phone="+85291234567")
    OldMember.objects.create(external_id="M-3", phone="")

    # when
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())

    # then
    phones = dict(Member.objects.values_list("external_id", "phone"))
    assert phones == {"M-1": "+8613800138000", "M-2": "+85291234567", "M-3": ""}


@pytest.mark.django_db
@pytest.mark.parametrize("phone", ["１３８００１３８０００", "١٣٨٠٠١٣٨٠٠٠"])
def test_full_width_and_other_digits_in_a_phone_number_are_stored_as_ascii(api, phone):
    api.order(member={"external_id": "M-1", "phone": phone})
    assert Member.objects.get().phone == "+8613800138000"


@pytest.mark.django_db
@pytest.mark.parametrize("phone", ["+86 abc", "12ab"])
def test_other_digits_are_not_a_phone_number(api, phone):
    response = api.order(member={"external_id": "M-1", "phone": phone})
    assert response.status_code == 400
    assert response.json()["errors"][0]["attr"] == "member.phone"


def test_the_quick_way_for_mainland_mobiles_gives_what_phonenumbers_gives():
    import random

    import phonenumbers

    from members.phones import CHINA_MOBILE, _normalised

    def by_phonenumbers(text: str) -> str:
        number = phonenumbers.parse(text, "CN")
        if not phonenumbers.is_possible_number(number):
            return text
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    rng, quick = random.Random(5), 0
    for _ in range(5000):
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        for text in (digits, "+86" + digits, "179" + digits[3:]):
            if CHINA_MOBILE.fullmatch(text):
                quick += 1
                assert _normalised(text, 86) == by_phonenumbers(text), text
    assert quick > 3000
    # 17901… is a dialling prefix phonenumbers strips, so it is left to phonenumbers.
    assert not CHINA_MOBILE.fullmatch("17901005581")
    assert _normalised("17901005581", 86) == by_phonenumbers("17901005581")
