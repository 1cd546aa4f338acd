"""Importing order history: orders and their refunds recorded silently (no rule fires,
no points, no message, no webhook; they count as evaluated), then the members' running
totals recomputed from all their orders."""

import hashlib
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from members.selectors import member_ids_by_external_id
from orders import bulk
from orders.models import EARLIEST_PLACED_AT, FUTURE_TOLERANCE, Order, Refund

from . import values
from .columns import Column, Columns, Row
from .members import _external_id
from .runner import CREATE, UNCHANGED, UPDATE, Beat, ImportRefused
from .summary import programme_summary
from .tiers import tiers_from_rules


def _currency(cell: values.Cell) -> str | None:
    value = values.text(cell)
    if value is None:
        return None
    if len(value) != 3 or not value.isalpha() or not value.isascii():
        raise ValueError(_("“%(value)s” is not a 3-letter currency code") % {"value": value})
    return value.upper()


COLUMNS = Columns(
    [
        Column("external_id", _external_id, required=True),
        Column("member", _external_id, required=True),
        Column("amount", values.money_amount, required=True),
        Column("currency", _currency),
        Column("placed_at", values.moment, required=True),
        Column("refunded_amount", values.money_amount),
        Column("refunded_at", values.moment),
    ]
)
SAME = ("member_id", "amount", "currency", "placed_at")


def refund_external_id(order: str, refunded: Decimal) -> str:
    """The id of the refund an import records to bring an order's refunds to `refunded`:
    the same file gives the same id, so running it again adds nothing (a digest, so it
    fits whatever the order's id)."""
    digest = hashlib.sha256(f"{order}:{refunded}".encode()).hexdigest()[:48]
    return f"import:{digest}"


class OrdersImport:
    kind = "orders"
    columns = COLUMNS

    def __init__(self, *, tiers_from_rules: bool = False, first_load: bool = False) -> None:
        self.place_by_rules, self.first_load = tiers_from_rules, first_load
        self.now = timezone.now()
        self.set_aside: list[str] = []  # the orders' indexes to build again
        self.start()

    def start(self) -> None:
        self.members: set[int] = set()  # every member of the file: totals recomputed

    def _row_problems(self, row: Row) -> None:
        v = row.values
        latest = self.now + FUTURE_TOLERANCE
        if "placed_at" in v and not EARLIEST_PLACED_AT <= v["placed_at"] <= latest:
            row.error("placed_at", _("must be from 2000 to now"))
        refunded = v.get("refunded_amount", Decimal(0))
        if refunded and "amount" in v and refunded > v["amount"]:
            row.error("refunded_amount", _("is more than the amount"))
        if "refunded_at" in v:
            if not refunded:
                row.error("refunded_at", _("give the refunded amount too"))
            elif "placed_at" in v and not v["placed_at"] <= v["refunded_at"] <= latest:
                row.error(
                    "refunded_at", _("must be after the order was placed and not later than now")
                )

    def check(self, rows: list[Row]) -> tuple[dict[int, str], Any]:
        for row in rows:
            self._row_problems(row)
        candidates = [row for row in rows if not row.errors]
        members = member_ids_by_external_id({row.values["member"] for row in candidates})
        recorded = self._recorded([row.values["external_id"] for row in candidates])
        outcomes, plan = {}, []
        for row in candidates:
            v = row.values
            member_id = members.get(v["member"])
            if member_id is None:
                row.error(
                    "member", _("no member has the external id “%(id)s”") % {"id": v["member"]}
                )
                continue
            order = (
                member_id,
                v["amount"],
                v.get("currency", settings.TIERFLOW_CURRENCY),
                v["placed_at"],
            )
            refunded = v.get("refunded_amount", Decimal(0))
            before = recorded.get(v["external_id"])
            if before is not None:
                if tuple(before[0]) != order:
                    row.error(
                        "external_id",
                        _("recorded already, with another member, amount, currency or time"),
                    )
                    continue
                if refunded > before[1] and before[2] > 0:
                    # Recorded live, it earned points and growth a refund must take back.
                    row.error(
                        "refunded_amount",
                        _("the order was recorded through the API: send its refunds there"),
                    )
                    continue
                if refunded < before[1]:
                    row.error(
                        "refunded_amount",
                        _("less than the %(refunded)s refunded already") % {"refunded": before[1]},
                    )
                    continue
            already = before[1] if before is not None else None
            outcomes[row.number] = (
                CREATE if already is None else UPDATE if refunded > already else UNCHANGED
            )
            plan.append(
                (v["external_id"], order, v["member"], refunded, v.get("refunded_at"), already)
            )
            self.members.add(member_id)
        return outcomes, plan

    def _recorded(self, external_ids: list[str]) -> dict[str, tuple]:
        """Those of the orders recorded already: (member, amount, currency, time),
        refunded amount, event number. In a first load only the file's own rows are, and
        a repeated id is a problem of its own (runner._repeated_ids): none is looked up."""
        if self.set_aside:
            return {}
        recorded = Order.objects.filter(external_id__any_of=external_ids)
        rows = recorded.values_list("external_id", *SAME, "refunded_amount", "seq")
        return {external_id: (rest[:4], rest[4], rest[5]) for external_id, *rest in rows}

    def duplicates(self) -> list[str]:
        return []

    def begin(self, *, one_transaction: bool) -> None:
        if not self.first_load:
            return
        if not one_transaction:
            raise ImportRefused(_("A first load is one transaction: leave out --skip-invalid."))
        try:
            self.set_aside = bulk.orders_indexes_set_aside()
        except bulk.NotAFirstLoad as exc:
            raise ImportRefused(str(exc)) from exc

    def write(self, plan) -> None:
        orders, refunds = [], []
        for external_id, (
            member_id,
            amount,
            currency,
            placed_at,
        ), member, refunded, at, already in plan:
            if already is None:
                orders.append(
                    bulk.HistoricOrder(external_id, member_id, member, amount, currency, placed_at)
                )
            if refunded > (already or 0):
                refund = Refund(
                    external_id=refund_external_id(external_id, refunded),
                    member_id=member_id,
                    amount=refunded - (already or 0),
                    refunded_at=at or placed_at + timedelta(seconds=1),
                    payload_hash="import",
                    seq=0,
                )
                refunds.append((external_id, refund))
        bulk.orders_record_silently(orders, refunds)

    def finish(self, beat: Beat) -> list[str]:
        bulk.orders_indexes_rebuild(self.set_aside)  # first: the totals read by member
        # After a first load the file's members are exactly those with orders.
        recomputed = bulk.members_totals_recompute(
            None if self.set_aside else self.members, progress=beat
        )
        lines = [_("Totals recomputed for %(members)d members.") % {"members": recomputed}]
        if self.place_by_rules:
            moved = tiers_from_rules(sorted(self.members), progress=beat)
            lines.append(
                _("Tiers from the upgrade rules: %(moved)d members moved up.") % {"moved": moved}
            )
        return lines + programme_summary()
