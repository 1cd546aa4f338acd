from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.models import Job


class ImportJob(Job):
    """An import asked for in the admin: the uploaded file is kept in TIERFLOW_IMPORTS_DIR
    and a background task checks it (a dry run), then, when the operator confirms,
    imports it; the row holds the progress (bytes of the file read) and the report."""

    class Kind(models.TextChoices):
        MEMBERS = "members", _("members")
        ORDERS = "orders", _("orders")

    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    # The file's name in TIERFLOW_IMPORTS_DIR, and as it was uploaded.
    filename = models.CharField(max_length=100, editable=False)
    original_name = models.CharField(_("file"), max_length=255)
    dry_run = models.BooleanField(_("dry run"), default=True)
    skip_invalid = models.BooleanField(_("skip invalid rows"), default=False)
    ignore_columns = models.BooleanField(_("ignore unknown columns"), default=False)
    tiers_from_rules = models.BooleanField(_("tiers from the upgrade rules"), default=False)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("requested by"),
    )
    # The report's lines once done; whether rows had problems.
    report = models.TextField(pgettext_lazy("import", "report"), blank=True)
    rejected = models.PositiveIntegerField(_("rows with problems"), default=0)

    class Meta(Job.Meta):
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return f"{self._meta.verbose_name} #{self.pk} ({self.original_name})"
