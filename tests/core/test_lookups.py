"""core.lookups: field__any_of means what field__in means, on every database."""

import pytest
from django.utils import timezone

from members.models import Member
from orders.models import Order
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db


def test_any_of_finds_what_in_finds():
    members = [MemberFactory() for _ in range(3)]
    wanted = [members[0].external_id, members[2].external_id, "nobody"]
    found = set(Member.objects.filter(external_id__any_of=wanted).values_list("pk", flat=True))
    assert found == {members[0].pk, members[2].pk}
    assert found == set(Member.objects.filter(external_id__in=wanted).values_list("pk", flat=True))


def _order(member: Member, external_id: str) -> Order:
    return Order.objects.create(
        external_id=external_id, member=member, amount=10, placed_at=timezone.now(), seq=0
    )


def test_any_of_on_a_relation_and_the_empty_list():
    first, second = MemberFactory(), MemberFactory()
    order = _order(first, "O-1")
    _order(second, "O-2")
    assert list(Order.objects.filter(member_id__any_of=[first.pk])) == [order]
    assert list(Order.objects.filter(member_id__any_of=[])) == []
    assert list(Order.objects.filter(member_id__any_of=[None])) == []
