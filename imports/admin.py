"""The admin's import pages: upload a members or orders file with the options, see its
first rows and the dry run's report (every problem by row and column) as the check
runs in the background, then confirm to import it; the import's progress and report."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from core.admin import ReadOnlyAdmin, job_progress

from .jobs import AlreadyImported, import_job_confirm, import_job_start, import_preview
from .models import ImportJob

MAX_UPLOAD_BYTES = 2 * 1024**3


class ImportForm(forms.Form):
    kind = forms.ChoiceField(label=_("What"), choices=ImportJob.Kind.choices)
    file = forms.FileField(label=_("CSV or XLSX file"))
    skip_invalid = forms.BooleanField(
        label=_("Import the valid rows even if others have problems"), required=False
    )
    ignore_columns = forms.BooleanField(label=_("Ignore unknown columns"), required=False)
    tiers_from_rules = forms.BooleanField(
        label=_("Place members without a tier in the file where the upgrade rules would"),
        required=False,
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError(_("The file is larger than 2 GB."))
        if not upload.name.lower().endswith((".csv", ".xlsx", ".txt")):
            raise forms.ValidationError(_("Upload a .csv or .xlsx file."))
        return upload


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "kind", "dry_run", "status", "progress", "rejected", "created_at"]
    list_filter = ["kind", "status", "dry_run"]
    change_form_template = "admin/imports/importjob/change_form.html"
    fields = ["kind", "original_name", "dry_run", "status", "progress", "preview"]
    fields += ["report_lines", "skip_invalid", "ignore_columns", "tiers_from_rules", "error"]
    fields += ["requested_by", "created_at", "finished_at"]
    readonly_fields = fields

    def _allowed(self, request: HttpRequest) -> bool:
        """Importing writes members and orders: it needs the right to add both."""
        user = request.user
        return user.has_perm("members.add_member") and user.has_perm("orders.add_order")

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request)

    def has_module_permission(self, request) -> bool:
        return self._allowed(request)

    def has_add_permission(self, request) -> bool:
        return self._allowed(request)

    def get_urls(self):
        own = [
            path("new/", self.admin_site.admin_view(self.new_view), name="imports_importjob_new"),
            path(
                "<int:pk>/confirm/",
                self.admin_site.admin_view(self.confirm_view),
                name="imports_importjob_confirm",
            ),
        ]
        return own + super().get_urls()

    def add_view(self, request, form_url="", extra_context=None):
        return HttpResponseRedirect(reverse("admin:imports_importjob_new"))

    def new_view(self, request: HttpRequest):
        if not self._allowed(request):
            raise PermissionDenied
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            job = import_job_start(
                user=request.user,
                kind=data["kind"],
                upload=data["file"],
                skip_invalid=data["skip_invalid"],
                ignore_columns=data["ignore_columns"],
                tiers_from_rules=data["tiers_from_rules"],
            )
            return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Import members or orders"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/imports/new.html", context)

    def confirm_view(self, request: HttpRequest, pk: int):
        job = get_object_or_404(ImportJob, pk=pk)
        if request.method != "POST" or not self._allowed(request) or not _confirmable(job):
            raise PermissionDenied
        try:
            real = import_job_confirm(job=job, user=request.user)
        except AlreadyImported:
            messages.error(request, _("This file is being imported or was imported already."))
            return HttpResponseRedirect(reverse("admin:imports_importjob_changelist"))
        messages.success(request, _("Importing: the page shows the progress."))
        return HttpResponseRedirect(reverse("admin:imports_importjob_change", args=[real.pk]))

    @admin.display(description=_("progress (bytes of the file read)"))
    def progress(self, job: ImportJob) -> str:
        return job_progress(job)

    @admin.display(description=_("first rows"))
    def preview(self, job: ImportJob) -> str:
        header, rows = import_preview(job)
        head = format_html_join("", "<th>{}</th>", ((name,) for name in header))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows),
        )
        return format_html('<table class="import-preview"><tr>{}</tr>{}</table>', head, body)

    @admin.display(description=pgettext_lazy("import", "report"))
    def report_lines(self, job: ImportJob) -> str:
        if not job.report:
            return _("Not finished yet: reload the page.")
        return format_html("<pre>{}</pre>", job.report)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        job = self.get_object(request, object_id)
        if job is not None and _confirmable(job):
            extra_context = {
                **(extra_context or {}),
                "confirm_url": reverse("admin:imports_importjob_confirm", args=[job.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)


def _confirmable(job: ImportJob) -> bool:
    """A finished dry run with no problem (or whose rows with problems are to be left
    out) can be imported."""
    done = job.dry_run and job.status == ImportJob.Status.DONE and bool(job.filename)
    imported = ImportJob.objects.filter(filename=job.filename, dry_run=False).exists()
    return done and not imported and (job.rejected == 0 or job.skip_invalid)
