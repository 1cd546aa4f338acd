from datetime import datetime

from django.db import models
from django.utils.translation import gettext_lazy as _


class Evaluable(models.Model):
    """An event in a member's journal that the rules are evaluated for: an order, a
    refund, an engagement, a tier change made outside an evaluation (joining is the
    member's event 1). `seq` numbers the member's events in the order they were recorded,
    under the member row lock; the member's `evaluated_seq` says how far the rules have
    got. So the database, not the broker, is the record of work still to do, and the
    engine can evaluate each event as the member stood right after it, never seeing the
    events recorded later. Rows from before the journal existed have seq 0."""

    seq = models.PositiveIntegerField(_("event number"), default=0, editable=False)

    class Meta:
        abstract = True
        indexes = [models.Index(fields=["member", "seq"], name="%(class)s_member_seq")]

    @property
    def is_evaluated(self) -> bool:
        return self.seq <= self.member.evaluated_seq


def newest(queryset, *, at: str, before: datetime | None, limit: int):
    """One page of a member's timeline from one source: newest first, older than
    `before` (the previous page's last entry), at most `limit`."""
    if before is not None:
        queryset = queryset.filter(**{f"{at}__lt": before})
    return queryset.order_by(f"-{at}", "-pk")[:limit]
