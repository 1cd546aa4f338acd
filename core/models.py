from datetime import datetime, timedelta

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Evaluable(models.Model):
    """Something the rules must be evaluated for, exactly once: an order, a refund, an
    engagement event, a new member. The database, not the broker, is the record of work
    still to do: `evaluated_at` stays null until the evaluation commits, and a sweeper
    re-publishes what has waited too long, the longest-waiting first (`enqueued_at`), so
    subjects that keep failing cannot hold up the others."""

    evaluated_at = models.DateTimeField(
        _("rules evaluated at"), null=True, blank=True, editable=False
    )
    enqueued_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        abstract = True
        indexes = [
            models.Index(
                fields=["enqueued_at"],
                condition=models.Q(evaluated_at__isnull=True),
                name="%(class)s_pending",
            )
        ]

    @property
    def is_evaluated(self) -> bool:
        return self.evaluated_at is not None


def pending_evaluation(
    model: type[Evaluable], *, member_field: str, older_than: timedelta, limit: int
) -> list[tuple[int, int]]:
    """(subject id, member id) of the subjects waiting longer than `older_than`, and
    marks them as enqueued now."""
    cutoff = timezone.now() - older_than
    rows = list(
        model.objects.filter(evaluated_at__isnull=True, enqueued_at__lte=cutoff)
        .order_by("enqueued_at")
        .values_list("pk", member_field)[:limit]
    )
    model.objects.filter(pk__in=[pk for pk, _ in rows]).update(enqueued_at=timezone.now())
    return rows


def pending_count(model: type[Evaluable], *, older_than: timedelta) -> int:
    cutoff = timezone.now() - older_than
    return model.objects.filter(evaluated_at__isnull=True, enqueued_at__lte=cutoff).count()


def mark_evaluated(model: type[Evaluable], pk: int) -> bool:
    """Conditional update: True for the caller that marked it, False if already marked."""
    return bool(
        model.objects.filter(pk=pk, evaluated_at__isnull=True).update(evaluated_at=timezone.now())
    )


def newest(queryset, *, at: str, before: datetime | None, limit: int):
    """One page of a member's timeline from one source: newest first, older than
    `before` (the previous page's last entry), at most `limit`."""
    if before is not None:
        queryset = queryset.filter(**{f"{at}__lt": before})
    return queryset.order_by(f"-{at}", "-pk")[:limit]
