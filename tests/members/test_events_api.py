from datetime import timedelta

import pytest
from django.utils import timezone

from benefits.models import GrowthEntry
from members.models import EngagementEvent
from rules.programme.load import programme_load
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

# What each kind of engagement earns, and how many of each a day earn it.
PROGRAMME = """
engagement_kinds:
  - {code: check-in, name: Check-in, growth_points: 5, daily_cap: 1}
  - {code: review, name: Review, growth_points: 20, daily_cap: 3}
  - {code: share, name: Share, growth_points: 10, daily_cap: 3}
"""


def event(api, external_id="E-1", kind="review", minutes_ago=5, **fields):
    payload = {
        "external_id": external_id,
        "member": "M-1",
        "kind": kind,
        "occurred_at": (timezone.now() - timedelta(minutes=minutes_ago)).isoformat(),
        **fields,
    }
    return api.post("/api/v1/events/", payload)


@pytest.fixture
def member():
    programme_load(PROGRAMME)
    return MemberFactory(external_id="M-1")


def test_an_engagement_earns_its_growth_points(api, member):
    # when
    response = event(api, kind="review")

    # then
    assert response.status_code == 201
    assert response.json()["kind"] == "review"
    assert EngagementEvent.objects.get().is_evaluated
    assert [e.points for e in GrowthEntry.objects.filter(member=member)] == [20]


def test_a_replay_is_ignored(api, member):
    # given
    occurred_at = timezone.now() - timedelta(minutes=5)
    payload = {
        "external_id": "E-1",
        "member": "M-1",
        "kind": "review",
        "occurred_at": occurred_at.isoformat(),
    }
    first = api.post("/api/v1/events/", payload)

    # when
    replay = api.post("/api/v1/events/", payload)

    # then
    assert (first.status_code, replay.status_code) == (201, 200)
    assert replay.json() == first.json()
    assert GrowthEntry.objects.count() == 1


def test_the_daily_cap_limits_growth_points_per_kind_and_day(api, member):
    # when: three check-ins in one day; check-ins are capped at one a day
    for n in range(3):
        event(api, external_id=f"E-{n}", kind="check-in", minutes_ago=n + 1)

    # then
    assert EngagementEvent.objects.count() == 3
    assert [e.points for e in GrowthEntry.objects.all()] == [5]


@pytest.mark.parametrize(
    ("fields", "attr"),
    [
        ({"kind": "dance"}, "kind"),
        ({"occurred_at": (timezone.now() + timedelta(days=1)).isoformat()}, "occurred_at"),
        ({"stars": 5}, "stars"),
    ],
)
def test_bad_events_are_a_400_and_record_nothing(api, member, fields, attr):
    response = event(api, **fields)
    assert response.status_code == 400
    assert attr in {error["attr"] for error in response.json()["errors"]}
    assert not EngagementEvent.objects.exists()


def test_a_different_payload_for_a_recorded_event_is_a_conflict(api, member):
    event(api, kind="review")
    assert event(api, kind="share").status_code == 409
