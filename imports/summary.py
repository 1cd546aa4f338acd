"""The summary at the end of an import: the programme as it now stands."""

from django.utils import timezone
from django.utils.translation import gettext as _

from benefits.report_selectors import points_ledger_total
from members.selectors import members_per_tier


def programme_summary() -> list[str]:
    tiers = ", ".join(f"{code or _('no tier')} {count}" for code, count in members_per_tier())
    return [
        _("Members per tier: %(tiers)s.") % {"tiers": tiers or "-"},
        _("Points outstanding, all members: %(points)d.")
        % {"points": points_ledger_total(before=timezone.now())},
    ]
