"""Points over their life: lots lapse at midnight and the daily job writes off what is
left of them, once; spending uses the soonest-lapsing lots first. Redemption through the
API is idempotent by key, never takes a balance below zero, never spends lapsed points,
and refuses bad input with a clear 4xx that changes nothing."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from benefits.models import PointsEntry
from benefits.selectors import points_balance
from benefits.services.points import earning_policy_update
from members.models import Member
from rules.models import RuleFiring
from rules.programme.load import programme_load
from rules.services.daily import clock_triggers_run
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year, month, day, hour=12, minute=0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def lot(member, points: int, expires_at: datetime | None, created_at: datetime) -> PointsEntry:
    return PointsEntry.objects.create(
        member=member,
        kind=PointsEntry.Kind.BONUS,
        points=points,
        reason="test",
        expires_at=expires_at,
        created_at=created_at,
    )


def ledger(member) -> list[tuple[str, int]]:
    """The member's entries, in the order they were written."""
    return list(
        PointsEntry.objects.filter(member=member).order_by("pk").values_list("kind", "points")
    )


def redeem_url(member: str) -> str:
    return reverse("points-redeem", kwargs={"external_id": member})


def redeem(api, member="M-1", **fields):
    payload = {"idempotency_key": "POS-1", "points": 30, **fields}
    return api.post(redeem_url(member), payload)


def error(response) -> tuple:
    [only] = response.json()["errors"]
    return response.status_code, only["attr"], only["detail"]


# --- lapsing --------------------------------------------------------------------------


OLD_LOT_LAPSES = local(2025, 1, 1, 0, 0)


@pytest.fixture
def member():
    """Three lots: 500 that never lapse (earned first), 100 lapsing at the start of 2025,
    200 lapsing at the start of 2026."""
    member = MemberFactory(external_id="M-1")
    lot(member, 500, None, local(2023, 5, 1))
    lot(member, 100, OLD_LOT_LAPSES, local(2024, 1, 5))
    lot(member, 200, local(2026, 1, 1, 0, 0), local(2024, 11, 1))
    return member


@pytest.mark.parametrize(
    ("redeemed", "written_off"),
    [(0, 100), (30, 70), (99, 1), (100, None), (150, None), (750, None)],
)
def test_the_daily_job_writes_off_what_is_left_of_a_lapsed_lot_once(
    api, member, redeemed, written_off
):
    # given: a redemption before the old lot lapses
    if redeemed:
        with time_machine.travel(local(2024, 12, 10), tick=False):
            assert redeem(api, points=redeemed).status_code == 201
    written = len(ledger(member))

    # when: the day before the lapse, the lapse day, and the lapse day again
    with time_machine.travel(local(2025, 1, 1, 1), tick=False):
        day_before = clock_triggers_run(date(2024, 12, 31))
        after_day_before = len(ledger(member))
        lapse_day = clock_triggers_run(date(2025, 1, 1))
        after_lapse_day = ledger(member)
        again = clock_triggers_run(date(2025, 1, 1))

    # then: nothing the day before; on the day, one entry for what was left of the lot
    assert "points_expiry" not in day_before and after_day_before == written
    expired = PointsEntry.objects.filter(member=member, kind="expire")
    if written_off:
        assert lapse_day["points_expiry"] == 1
        [entry] = expired
        assert (entry.points, entry.created_at, entry.reason) == (
            -written_off,
            OLD_LOT_LAPSES,
            "points lapsed",
        )
    else:
        assert lapse_day["points_expiry"] == 0
        assert not expired.exists()
    assert again["points_expiry"] == 0
    assert ledger(member) == after_lapse_day
    balance = 800 - redeemed - (written_off or 0)
    assert sum(points for _, points in ledger(member)) == balance
    with time_machine.travel(local(2025, 1, 1, 1), tick=False):  # before the next lot lapses
        assert points_balance(member_id=member.pk) == balance
        assert api.get("/api/v1/members/M-1/").json()["points_balance"] == balance


def test_no_lot_is_written_off_twice_across_lapse_days(api, member):
    # given: 130 spent, using up the old lot and 30 of the next
    with time_machine.travel(local(2024, 12, 10), tick=False):
        redeem(api, points=130)

    # when: both lapse days come round
    with time_machine.travel(local(2026, 1, 1, 1), tick=False):
        first = clock_triggers_run(date(2025, 1, 1))
        second = clock_triggers_run(date(2026, 1, 1))

    # then: the old lot had nothing left; what was left of the newer one lapses
    assert (first["points_expiry"], second["points_expiry"]) == (0, 1)
    assert ledger(member)[3:] == [("redeem", -130), ("expire", -170)]
    assert points_balance(member_id=member.pk) == 500  # the lot that never lapses
    out = StringIO()
    call_command("verify_balances", stdout=out)
    assert "No drift" in out.getvalue()


# --- redeeming ------------------------------------------------------------------------


def test_redeeming_spends_points_and_says_what_is_left(api, member):
    # when
    with time_machine.travel(local(2024, 12, 10, 15), tick=False):
        response = redeem(api, points=120, reason="兑换礼品")

    # then
    assert response.status_code == 201
    assert response.json() == {
        "idempotency_key": "POS-1",
        "points": 120,
        "reason": "兑换礼品",
        "balance": 680,
        "at": "2024-12-10T15:00:00+08:00",
    }
    assert ledger(member)[3:] == [("redeem", -120)]
    assert PointsEntry.objects.get(kind="redeem").external_id == "POS-1"


def test_a_redemption_without_a_reason_says_redeemed(api, member):
    response = redeem(api, points=10)
    assert response.status_code == 201
    assert response.json()["reason"] == "redeemed"


def test_a_replay_is_a_200_with_the_same_body_and_spends_nothing_more(api, member):
    # given
    with time_machine.travel(local(2024, 12, 10, 15), tick=False):
        first = redeem(api, points=120)

    # when: the till retries later
    with time_machine.travel(local(2024, 12, 10, 15, 5), tick=False):
        replay = redeem(api, points=120)

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert PointsEntry.objects.filter(kind="redeem").count() == 1
    assert points_balance(member_id=member.pk, at=local(2024, 12, 10, 15, 5)) == 680


@pytest.mark.parametrize(
    "other",
    [{"points": 121}, {"points": 120, "reason": "另一笔"}, {"points": 120, "member": "M-2"}],
)
def test_the_same_key_with_other_details_is_a_409_that_changes_nothing(api, member, other):
    # given
    lot(MemberFactory(external_id="M-2"), 300, None, local(2024, 1, 1))
    assert redeem(api, points=120).status_code == 201
    before = list(PointsEntry.objects.order_by("pk").values_list("member", "kind", "points"))

    # when
    response = redeem(api, **other)

    # then
    assert response.status_code == 409
    assert response.json()["errors"][0]["code"] == "conflict"
    assert list(PointsEntry.objects.order_by("pk").values_list("member", "kind", "points")) == (
        before
    )


@pytest.mark.parametrize("asked", [801, 5000])
def test_asking_for_more_than_the_balance_is_a_400_on_points_that_writes_nothing(
    api, member, asked
):
    # when
    with time_machine.travel(local(2024, 12, 10), tick=False):
        response = redeem(api, points=asked)

    # then
    assert error(response) == (
        400,
        "points",
        f"Only 800 points are available; {asked} were asked for.",
    )
    assert len(ledger(member)) == 3
    # the key was not used up: the right amount goes through with it
    with time_machine.travel(local(2024, 12, 10), tick=False):
        assert redeem(api, points=800).json()["balance"] == 0


def test_lapsed_points_cannot_be_spent(api, member):
    # given: the old lot lapsed at midnight and the daily job has not yet run
    with time_machine.travel(local(2025, 1, 1, 0, 30), tick=False):
        # when: the whole balance the ledger still shows is asked for
        refused = redeem(api, points=800)
        written_after_refusal = ledger(member)
        # ...then what can still be spent
        spent = redeem(api, idempotency_key="POS-2", points=700)

    # then: the lapsed lot was written off first, so 700 was all there was
    assert error(refused) == (400, "points", "Only 700 points are available; 800 were asked for.")
    assert len(written_after_refusal) == 3  # refused: not even the write-off
    assert spent.status_code == 201
    assert spent.json()["balance"] == 0
    assert ledger(member)[3:] == [("expire", -100), ("redeem", -700)]

    # when: the daily job runs for the day the lot lapsed
    with time_machine.travel(local(2025, 1, 1, 1), tick=False):
        done = clock_triggers_run(date(2025, 1, 1))

    # then: nothing more is written off
    assert done["points_expiry"] == 0
    assert PointsEntry.objects.filter(kind="expire").count() == 1
    assert points_balance(member_id=member.pk) == 0


def test_redeeming_for_an_unknown_member_is_a_404(api, member):
    response = redeem(api, member="NOBODY")
    assert response.status_code == 404
    assert response.json()["errors"][0]["code"] == "not_found"
    assert len(ledger(member)) == 3
    # the key is still free for a real redemption
    assert redeem(api).status_code == 201


@pytest.mark.parametrize(
    ("payload", "attr"),
    [
        ({"idempotency_key": "POS-1", "points": 0}, "points"),
        ({"idempotency_key": "POS-1", "points": -5}, "points"),
        ({"idempotency_key": "POS-1", "points": "lots"}, "points"),
        ({"idempotency_key": "POS-1"}, "points"),
        ({"points": 10}, "idempotency_key"),
        ({"idempotency_key": "", "points": 10}, "idempotency_key"),
        ({"idempotency_key": "POS/1", "points": 10}, "idempotency_key"),
        ({"idempotency_key": "POS-1", "points": 10, "member": "M-1"}, "member"),
    ],
)
def test_bad_input_is_a_400_on_its_field_that_writes_nothing(api, member, payload, attr):
    response = api.post(redeem_url("M-1"), payload)
    assert response.status_code == 400
    assert [e["attr"] for e in response.json()["errors"]] == [attr]
    assert len(ledger(member)) == 3


def test_a_replayed_redemption_answers_with_the_balance_it_left_then(api, member):
    # given: 500 points that never lapse (the others lapsed); 120 redeemed, then 100 more
    first = redeem(api, idempotency_key="K-1", points=120)
    redeem(api, idempotency_key="K-2", points=100)

    # when
    replay = redeem(api, idempotency_key="K-1", points=120)

    # then: the same answer as the first time (380 left), not today's balance (280)
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert replay.json()["balance"] == 380


# --- points that lapsed before anyone looked ----------------------------------------


@pytest.fixture
def thirty_day_points(db):
    earning_policy_update(points_per_unit=Decimal(1), points_expiry="days", points_valid_days=30)
    programme_load(
        "rules:\n  - {code: rich, name: rich, trigger: order_paid, fires: every_time, "
        "conditions: {all: [{fact: points_balance, op: gte, value: 100}]}, "
        "actions: [{type: award_growth_points, points: 1}]}\n"
    )


def test_points_of_an_order_placed_before_they_would_have_lapsed_never_count(
    api, thirty_day_points
):
    # when: the ERP sends an order placed 40 days ago, whose points lapsed 10 days ago
    api.order(
        external_id="SO-OLD",
        member={"external_id": "M-1"},
        amount="100.00",
        placed_at=(timezone.now() - timedelta(days=40)).isoformat(),
    )

    # then: earned and written off at once; no rule saw them, no balance counts them
    assert ledger(Member.objects.get(external_id="M-1")) == [("earn", 100), ("expire", -100)]
    assert not RuleFiring.objects.exists()
    assert api.get("/api/v1/members/M-1/").json()["points_balance"] == 0


def test_points_that_lapsed_since_count_nowhere_before_the_daily_job(api, thirty_day_points):
    # given: an order placed 20 days ago, evaluated with its 100 points still good
    api.order(
        external_id="SO-1",
        member={"external_id": "M-1"},
        amount="100.00",
        placed_at=(timezone.now() - timedelta(days=20)).isoformat(),
    )
    member = Member.objects.get(external_id="M-1")
    assert points_balance(member_id=member.pk) == 100

    # when: twelve days later, before any daily job has written them off
    with time_machine.travel(timezone.now() + timedelta(days=12)):
        balance = api.get("/api/v1/members/M-1/").json()["points_balance"]
        api.order(external_id="SO-2", member="M-1", amount="1.00")

    # then: the balance and the rules' facts leave them out (the rule fired for SO-1,
    # with its 100 points, not for SO-2, with 1)
    assert balance == 0
    assert [f.order.external_id for f in RuleFiring.objects.all()] == ["SO-1"]
    assert ledger(member) == [("earn", 100), ("earn", 1)]
