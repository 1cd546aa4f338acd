"""core.copy: many rows inserted at once (COPY on PostgreSQL), the fields not given
taking their defaults, values of fields with their own preparation prepared."""

from datetime import UTC, datetime

import pytest

from core.copy import rows_insert
from members.models import Member, TierChange, TierChangeCause
from notifications.models import Consent
from tests.factories import MemberFactory, TierFactory

pytestmark = pytest.mark.django_db


def test_rows_take_their_defaults():
    member = MemberFactory()
    count = rows_insert(
        Consent,
        ["member_id", "channel", "granted", "source"],
        [(member.pk, "sms", True, "import"), (member.pk, "email", False, "import")],
    )
    assert count == 2
    rows = list(Consent.objects.filter(member=member).order_by("channel"))
    assert [(c.channel, c.granted) for c in rows] == [("email", False), ("sms", True)]
    assert rows[0].recorded_at is not None  # the field's default, timezone.now
    assert rows[0].recorded_at == rows[1].recorded_at  # once per call


def test_a_field_with_its_own_preparation_prepares_its_values():
    """PhoneField stores E.164 whatever form it is given in."""
    rows_insert(Member, ["external_id", "phone"], [("C-1", "139 0000 0001")])
    assert Member.objects.get(external_id="C-1").phone == "+8613900000001"


def test_foreign_keys_by_id_and_a_unique_field_with_a_default_refused():
    member, silver = MemberFactory(), TierFactory(code="silver-copy")
    at = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    fields = ["member_id", "to_tier_id", "reason", "cause", "created_at"]
    rows_insert(TierChange, fields, [(member.pk, silver.pk, "r", TierChangeCause.IMPORT, at)])
    stored = TierChange.objects.get(member=member, to_tier=silver)
    assert (stored.created_at, stored.cause, stored.from_tier_id) == (at, "import", None)
    with pytest.raises(ValueError, match="a default is taken once for every row"):
        rows_insert(Member, ["phone"], [("13900000002",)])  # external_id is unique


def test_nothing_given_inserts_nothing():
    assert rows_insert(Consent, ["member_id", "channel", "granted", "source"], []) == 0
    assert not Consent.objects.exists()
