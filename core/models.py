from datetime import datetime

from django.db import models
from django.db.models.functions import Now
from django.utils import timezone
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


def recorded_at_field() -> models.DateTimeField:
    """When the row was written, which may be later than the moment it stands for: the
    reports' roll-up finds what changed since it last ran by it. The database default
    covers rows loaded outside the ORM."""
    return models.DateTimeField(
        _("recorded at"), default=timezone.now, db_default=Now(), editable=False
    )


def newest(queryset, *, at: str, before: datetime | None, limit: int):
    """One page of a member's timeline from one source: newest first, older than
    `before` (the previous page's last entry), at most `limit`."""
    if before is not None:
        queryset = queryset.filter(**{f"{at}__lt": before})
    return queryset.order_by(f"-{at}", "-pk")[:limit]


class Job(models.Model):
    """An operator's background job over many members (a rule applied or simulated, a
    bulk coupon issue; imports and exports next), run by core.jobs in chunks: its
    progress, its cursor (the last member id done) and its sign of life are on the row."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    total = models.PositiveIntegerField(_("to do"), default=0)
    processed = models.PositiveIntegerField(_("done"), default=0)
    cursor = models.PositiveBigIntegerField(default=0, editable=False)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("started"), default=timezone.now)
    # Moved on by every task that works on the job: the sweeper's sign of life.
    heartbeat_at = models.DateTimeField(default=timezone.now, editable=False)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    @property
    def percent_done(self) -> int:
        if self.status == self.Status.DONE:
            return 100
        return min(100, self.processed * 100 // self.total) if self.total else 0
