from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from core.models import Job


class Dashboard(models.Model):
    """No table: the reports' place in the admin (its navigation, its index) and the
    holder of the `view_reports` permission."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("view_reports", _("Can view reports"))]
        verbose_name = _("report")
        verbose_name_plural = _("reports")

    def __str__(self) -> str:
        return str(self._meta.verbose_name_plural)


class SummarySent(models.Model):
    """A weekly or monthly summary e-mailed for a period: sent once, however often the
    task runs."""

    kind = models.CharField(_("kind"), max_length=10)
    period_start = models.DateField(_("period from"))
    recipients = models.TextField(_("sent to"))
    sent_at = models.DateTimeField(_("sent at"), auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["kind", "period_start"], name="summary_once_per_period")
        ]
        verbose_name = _("summary sent")
        verbose_name_plural = _("summaries sent")

    def __str__(self) -> str:
        return f"{self.kind} {self.period_start}"


# The roll-up: figures the reports would otherwise compute from millions of raw rows, kept
# per bucket and recomputed whole for the buckets that rows recorded since the last run
# touch (rollup.py). A report reads them for the buckets nothing has touched since, and
# the raw rows for the rest, so its figures are exact whenever it is read.


class RollupMark(models.Model):
    """One row: every row the figures depend on recorded before `recorded_before` is in
    them."""

    recorded_before = models.DateTimeField(_("covers rows recorded before"), null=True)
    finished_at = models.DateTimeField(_("finished at"), null=True)
    seconds = models.FloatField(_("seconds taken"), default=0)

    class Meta:
        verbose_name = _("reports roll-up")

    def __str__(self) -> str:
        return f"{self.recorded_before or '-'}"


class BuyerFigure(models.Model):
    """Members with orders placed in a bucket, and those with orders on 2+ days of it."""

    interval = models.CharField(max_length=5)
    bucket = models.DateField()
    buyers = models.PositiveIntegerField()
    repeat_buyers = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["interval", "bucket"], name="buyer_figure_once")
        ]

    def __str__(self) -> str:
        return f"{self.interval} {self.bucket}"


class TierSpendFigure(models.Model):
    """A bucket's orders by the tier held when they were placed, and its refunds by the
    tier of the order they refund (tier: an id, none for a member without a tier)."""

    interval = models.CharField(max_length=5)
    bucket = models.DateField()
    tier_id = models.BigIntegerField(null=True)
    orders = models.PositiveIntegerField()
    buyers = models.PositiveIntegerField()
    spend = models.DecimalField(max_digits=16, decimal_places=2)
    refunds = models.DecimalField(max_digits=16, decimal_places=2)

    class Meta:
        indexes = [models.Index(fields=["interval", "bucket"])]

    def __str__(self) -> str:
        return f"{self.interval} {self.bucket} {self.tier_id}"


class CohortFigure(models.Model):
    """Members whose first order was in the cohort's month who ordered `offset` months
    later (offset 0: the cohort's size), from the orders recorded before the mark."""

    cohort = models.DateField()
    offset = models.PositiveSmallIntegerField()
    members = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["cohort", "offset"], name="cohort_figure_once")
        ]

    def __str__(self) -> str:
        return f"{self.cohort} +{self.offset}"


class TierDelta(models.Model):
    """How many more members a tier (an id) had at the end of a day than at its start."""

    day = models.DateField()
    tier_id = models.BigIntegerField(null=True)
    members = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["day"])]

    def __str__(self) -> str:
        return f"{self.day} {self.tier_id} {self.members:+d}"


class PointsLotLeft(models.Model):
    """What is left of a member's points lots lapsing on one business day (none: never),
    spent points having used up the soonest first."""

    member_id = models.BigIntegerField()
    expires_on = models.DateField(null=True)
    points = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["member_id"]), models.Index(fields=["expires_on"])]

    def __str__(self) -> str:
        return f"{self.member_id} {self.expires_on} {self.points}"


class RuleFigure(models.Model):
    """What a rule (an id) gave away in a bucket: its firings, the members they were for,
    the face value of their coupons and the points they awarded."""

    interval = models.CharField(max_length=5)
    bucket = models.DateField()
    rule_id = models.BigIntegerField()
    firings = models.PositiveIntegerField()
    members = models.PositiveIntegerField()
    coupon_value = models.DecimalField(max_digits=16, decimal_places=2)
    points = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["interval", "bucket", "rule_id"], name="rule_figure_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.interval} {self.bucket} {self.rule_id}"


class PointsDay(models.Model):
    """The ledger's entries dated on a business day, all members together, as positive
    numbers: points issued, redeemed, expired and reversed. Days add up, so the balance at
    any midnight is the sum of every earlier day."""

    day = models.DateField(unique=True)
    issued = models.BigIntegerField()
    redeemed = models.BigIntegerField()
    expired = models.BigIntegerField()
    reversed = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.day} +{self.issued} -{self.redeemed} -{self.expired} -{self.reversed}"


class MembersExport(Job):
    """A members export asked for in the admin: a million members take minutes, longer
    than a request may, so a background task writes the file and the admin shows its
    progress and then a download for whoever asked. The file holds personal data: it is
    deleted TIERFLOW_EXPORT_KEEP_HOURS after it was written."""

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        XLSX = "xlsx", "XLSX"

    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("requested by"),
    )
    file_format = models.CharField(_("format"), max_length=4, choices=Format.choices)
    # The member list's query string: its filters, search and ordering.
    filters = models.TextField(_("filters"), blank=True)
    show_pii = models.BooleanField(_("personal data in clear"), default=False)
    # The written file's name in TIERFLOW_EXPORTS_DIR; empty until written and once deleted.
    filename = models.CharField(max_length=100, blank=True, editable=False)

    class Meta(Job.Meta):
        verbose_name = _("members export")
        verbose_name_plural = _("members exports")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk}"
