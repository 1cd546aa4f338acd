"""The members export: every member (or those an admin list's filters select) with their
tier, running totals, balances and tags. Personal data is masked unless the reader may see
it. Read a chunk of members at a time, by id, so a million rows never sit in memory."""

from collections.abc import Iterator
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from benefits.report_selectors import balances_by_member
from core.pii import mask_email, mask_name, mask_phone
from members import selectors as member_selectors
from members.models import Member

from .registry import Column, Kind

CHUNK = 2000
COLUMNS = [
    Column("external_id", Kind.TEXT),
    Column("name", Kind.TEXT),
    Column("phone", Kind.TEXT),
    Column("email", Kind.TEXT),
    Column("tier", Kind.TEXT),
    Column("tier_since", Kind.TEXT),
    Column("tier_until", Kind.TEXT),
    Column("lifetime_spend", Kind.MONEY),
    Column("orders"),
    Column("last_order", Kind.DATE),
    Column("points"),
    Column("growth_points"),
    Column("tags", Kind.TEXT),
]


def member_rows(
    members: QuerySet[Member] | None = None,
    *,
    show_pii: bool,
    progress=None,
) -> Iterator[list[Any]]:
    """The export's rows in id order. `progress(done)` is called after each chunk."""
    last_pk, done = 0, 0
    while True:
        chunk = member_selectors.members_page(members, after_pk=last_pk, limit=CHUNK)
        if not chunk:
            return
        balances = balances_by_member(member_ids=[m.pk for m in chunk])
        for member in chunk:
            points, growth = balances[member.pk]
            yield [
                member.external_id,
                member.name if show_pii else mask_name(member.name),
                member.phone if show_pii else mask_phone(member.phone),
                member.email if show_pii else mask_email(member.email),
                member.tier.code if member.tier else "",
                _moment(member.tier_since),
                _moment(member.tier_expires_at),
                member.lifetime_spend,
                member.order_count,
                timezone.localdate(member.last_order_at) if member.last_order_at else None,
                points,
                growth,
                " ".join(sorted(tag.code for tag in member.tags.all())),
            ]
        last_pk, done = chunk[-1].pk, done + len(chunk)
        if progress:
            progress(done)


def _moment(value) -> str:
    return timezone.localtime(value).isoformat(timespec="seconds") if value else ""
