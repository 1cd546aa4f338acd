"""Reports about what the programme did: the messages it sent and the rules that fired."""

from collections import defaultdict
from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from django.utils.translation import gettext_lazy as _

from notifications import selectors as notification_selectors
from rules.selectors import reports as rule_selectors

from .. import figures
from ..periods import Period
from ..registry import Column, Kind, Report, fixed, register

# The outbox's statuses, each counted in one column of the messages report.
MESSAGE_COLUMNS = ("queued", "sent", "delivered", "failed", "suppressed")
STATUS_COLUMN = {
    "queued": "queued",  # waiting: due, held for quiet hours, or retrying later
    "sending": "queued",  # claimed by a worker, the provider's answer not yet recorded
    "sent": "sent",
    "delivered": "delivered",
    "failed": "failed",
    "suppressed": "suppressed",
}


def _messages(period: Period) -> Iterator[Sequence[Any]]:
    counts = notification_selectors.notification_statuses_by_bucket(
        since=period.since, until=period.until, interval=period.interval
    )
    channels: dict[date, list[str]] = defaultdict(list)
    for bucket, channel in counts:
        channels[bucket].append(channel)
    for bucket in period.buckets():
        for channel in sorted(channels.get(bucket, ())):
            columns = dict.fromkeys(MESSAGE_COLUMNS, 0)
            for status, messages in counts[bucket, channel].items():
                columns[STATUS_COLUMN[status]] += messages
            yield [bucket, channel, *columns.values()]


register(
    Report(
        name="messages",
        title=_("Messages"),
        definition=_(
            "Messages (SMS, push, e-mail, webhook events) by the bucket they were created in, "
            "per channel, counted by where each stands now. queued: not sent yet (waiting to go "
            "out, held for quiet hours, waiting to retry after a passing failure, or being "
            "handed to the provider); sent: accepted by the provider, no delivery report "
            "(yet); delivered: the provider's delivery report confirmed it; failed: "
            "rejected, out of retries, or reported undeliverable; suppressed: never to be "
            "sent (no marketing consent, over the daily marketing cap, no address for the "
            "channel, or messages switched off). Only channels with messages in the "
            "bucket have a row; channels in alphabetical order."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("channel", Kind.TEXT),
            *(Column(name) for name in MESSAGE_COLUMNS),
        ),
        rows=_messages,
    )
)


def _rules(period: Period) -> Iterator[Sequence[Any]]:
    table = figures.rule_figures(period)
    codes = rule_selectors.rule_codes()
    fired: dict[date, list[tuple[str, tuple]]] = defaultdict(list)
    for (bucket, rule_id), cells in table.items():
        fired[bucket].append((codes.get(rule_id, str(rule_id)), cells))
    for bucket in period.buckets():
        for code, cells in sorted(fired.get(bucket, ())):
            yield [bucket, code, *cells]


register(
    Report(
        name="rules",
        title=_("Rules"),
        definition=_(
            "Per rule (by code, in alphabetical order), by the bucket it fired in; only rules "
            "that fired in the bucket have a row. firings: times it fired; members: "
            "different members it fired for; coupon_value: the face value of the coupons "
            "those firings issued, whatever became of them since (an amount-off coupon "
            "counts its amount; a percentage-off coupon its cap, or 0 when it has no cap); "
            "points: points those firings awarded, before any refund took them back or "
            "they lapsed."
        ),
        columns=fixed(
            Column("bucket", Kind.DATE),
            Column("rule", Kind.TEXT),
            Column("firings"),
            Column("members"),
            Column("coupon_value", Kind.MONEY),
            Column("points"),
        ),
        rows=_rules,
    )
)
