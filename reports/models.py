from django.db import models
from django.utils.translation import gettext_lazy as _


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
