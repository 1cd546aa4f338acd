from collections import defaultdict
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from benefits.models import Coupon
from core.days import business_bucket, start_of_day
from core.models import newest
from orders.models import Order

from .models import Consent, Notification, Purpose
from .services.messages import message_context


def notifications_stuck(
    *, status: str, older_than: timedelta, limit: int
) -> QuerySet[Notification]:
    """Messages in `status` since longer than `older_than`, or whose retry time (or the
    end of the quiet hours that held them) has come."""
    now = timezone.now()
    waiting = Q(next_attempt_at__isnull=True, created_at__lte=now - older_than) | Q(
        next_attempt_at__lte=now
    )
    return Notification.objects.filter(waiting, status=status).order_by("created_at")[:limit]


def notification_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    notifications = Notification.objects.filter(member_id=member_id).select_related(
        "template", "firing__rule"
    )
    return [
        {
            "type": "notification",
            "at": notification.created_at,
            "channel": notification.channel,
            # A rule's webhook action posts its event without a message template.
            "template": notification.template.code if notification.template else None,
            "url": notification.url or None,
            "text": notification.body,
            "status": notification.status,
            "status_reason": notification.status_reason,
            "sent_at": notification.sent_at,
            "rule": notification.firing.reference if notification.firing else None,
        }
        for notification in newest(notifications, at="created_at", before=before, limit=limit)
    ]


def consent_granted(*, member_id: int, channel: str) -> bool:
    """The member's latest choice about marketing on the channel; none means no."""
    latest = (
        Consent.objects.filter(member_id=member_id, channel=channel)
        .order_by("-recorded_at", "-id")
        .values_list("granted", flat=True)
        .first()
    )
    return bool(latest)


def member_consents(*, member_id: int) -> dict[str, dict]:
    """Per messaging channel: granted, and when and where that was recorded."""
    consents = {}
    for consent in Consent.objects.filter(member_id=member_id).order_by("recorded_at", "id"):
        consents[consent.channel] = {
            "granted": consent.granted,
            "source": consent.source,
            "recorded_at": consent.recorded_at,
        }
    return consents


def marketing_count_on(*, member_id: int, day: date) -> int:
    """Marketing messages for the member created on the business day, not suppressed."""
    start = start_of_day(day)
    return (
        Notification.objects.filter(
            member_id=member_id,
            purpose=Purpose.MARKETING,
            created_at__gte=start,
            created_at__lt=start + timedelta(days=1),
        )
        .exclude(status=Notification.Status.SUPPRESSED)
        .count()
    )


def preview_context(*, member) -> dict:
    """What a template would see for the member: their tier, latest coupon and order."""
    return message_context(
        member=member,
        coupon=Coupon.objects.filter(member=member).first(),
        order=Order.objects.filter(member=member).order_by("-placed_at").first(),
    )


def notification_statuses_by_bucket(
    *, since: datetime, until: datetime, interval: str
) -> dict[tuple[date, str], dict[str, int]]:
    """Messages created in [since, until), by the business date starting their bucket and
    their channel: how many are in each status now. Only (bucket, channel) pairs that had
    messages appear."""
    rows = (
        Notification.objects.filter(created_at__gte=since, created_at__lt=until)
        .values("channel", "status", bucket=business_bucket("created_at", interval))
        .annotate(messages=Count("pk"))
        .order_by()
        .values_list("bucket", "channel", "status", "messages")
    )
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(dict)
    for bucket, channel, status, messages in rows:
        counts[bucket, channel][status] = messages
    return dict(counts)


def consents_of_members(member_ids: list[int]) -> dict[tuple[int, str], bool]:
    """The latest choice of each member on each channel they made one on."""
    latest: dict[tuple[int, str], bool] = {}
    rows = Consent.objects.filter(member_id__any_of=member_ids).order_by("recorded_at", "id")
    for member_id, channel, granted in rows.values_list("member_id", "channel", "granted"):
        latest[member_id, channel] = granted
    return latest
