"""Each count of a report leads to the rows behind it: the admin list of those members,
tier changes, coupons, ledger entries, messages or firings, filtered to the bucket and to the row's
channel, template or rule. Counts whose rows no admin list can select (a tier held at
the time of an order, say) have no link."""

from collections.abc import Callable
from datetime import date

from django.urls import reverse
from django.utils.http import urlencode

from benefits.selectors import coupon_templates_by_code
from core.days import start_of_day
from rules.selectors.reports import rule_ids_by_code

from .periods import Period

OUTBOX = "admin:notifications_notification_changelist"
# The outbox's statuses behind each column of the messages report.
MESSAGE_STATUSES = {
    "queued": "queued,sending",
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "suppressed": "suppressed",
}
COUPONS = "admin:benefits_coupon_changelist"
POINTS = "admin:benefits_pointsentry_changelist"
TEMPLATE = {"template__id__exact": "#template"}
# The causes a tier-movements row names as such; any other names the rule that moved them.
CAUSES = {"rule", "manual", "lapse", "refund", "base", "import"}


def _movement(row: dict) -> dict:
    cause = row["cause"]
    by_rule = {"cause__exact": "rule", "firing__rule__code__exact": cause}
    return {
        "from_tier__code__exact": row["from_tier"],
        "to_tier__code__exact": row["to_tier"],
        **({"cause__exact": cause} if cause in CAUSES else by_rule),
    }


# report -> column -> (admin list, date field filtered by the bucket, filters: a fixed
# value, "@column" for the row's value, "#column" for the id of the code in it; or a
# function of the row, by column, giving them)
LINKS: dict[str, dict[str, tuple[str, str, dict | Callable[[dict], dict]]]] = {
    "member-growth": {"new_members": ("admin:members_member_changelist", "joined_at", {})},
    "messages": {
        column: (OUTBOX, "created_at", {"channel__exact": "@channel", "status__in": statuses})
        for column, statuses in MESSAGE_STATUSES.items()
    },
    "coupons": {
        "issued": (COUPONS, "issued_at", TEMPLATE),
        "redeemed": (COUPONS, "redeemed_at", {**TEMPLATE, "status__exact": "redeemed"}),
        "expired": (COUPONS, "expires_at", {**TEMPLATE, "status__exact": "issued"}),
        "voided": (COUPONS, "voided_at", {**TEMPLATE, "status__exact": "void"}),
    },
    "points": {
        "issued": (POINTS, "created_at", {"kind__in": "earn,bonus"}),
        "redeemed": (POINTS, "created_at", {"kind__exact": "redeem"}),
        "expired": (POINTS, "created_at", {"kind__exact": "expire"}),
        "reversed": (POINTS, "created_at", {"kind__exact": "reverse"}),
    },
    "tier-movements": {"members": ("admin:members_tierchange_changelist", "created_at", _movement)},
    "rules": {
        "firings": ("admin:rules_rulefiring_changelist", "fired_at", {"rule__id__exact": "#rule"})
    },
}


def _ids(name: str) -> dict[str, int]:
    """Codes to ids, for the rows that name a template or a rule."""
    if name == "coupons":
        return {code: t.pk for code, t in coupon_templates_by_code().items()}
    if name == "rules":
        return rule_ids_by_code()
    return {}


def count_links(
    name: str, columns: list[str], rows: list[list], period: Period
) -> list[list[dict]]:
    """The rows as cells {"value", "url"}: a url where the count has a list behind it."""
    links = LINKS.get(name, {})
    ids = _ids(name) if links else {}
    bucket_index = columns.index("bucket") if "bucket" in columns else None
    out = []
    for row in rows:
        cells = []
        for column, value in zip(columns, row, strict=True):
            url = None
            if column in links and bucket_index is not None and value:
                url = _bucket_url(
                    links[column], date.fromisoformat(row[bucket_index]), period, columns, row, ids
                )
            cells.append({"value": value, "url": url})
        out.append(cells)
    return out


def _bucket_url(
    link: tuple[str, str, dict | Callable[[dict], dict]],
    bucket: date,
    period: Period,
    columns: list[str],
    row: list,
    ids: dict[str, int],
) -> str:
    view, field, filters = link

    def value(given: str):
        if given[:1] == "@":
            return row[columns.index(given[1:])]
        if given[:1] == "#":
            return ids.get(row[columns.index(given[1:])], "")
        return given

    if callable(filters):
        fixed = filters(dict(zip(columns, row, strict=True)))
    else:
        fixed = {name: value(given) for name, given in filters.items()}
    start = max(bucket, period.start)
    end = period.next_bucket(bucket)
    if end > period.end:
        end = date.fromordinal(period.end.toordinal() + 1)
    # Aware moments: the bucket's business days in TIME_ZONE.
    query = {
        f"{field}__gte": start_of_day(start).isoformat(),
        f"{field}__lt": start_of_day(end).isoformat(),
        **fixed,
    }
    return f"{reverse(view)}?{urlencode(query)}"
