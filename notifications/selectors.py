from datetime import timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from core.models import newest

from .models import Notification


def notifications_stuck(
    *, status: str, older_than: timedelta, limit: int
) -> QuerySet[Notification]:
    """Messages in `status` since longer than `older_than`, past any retry time."""
    cutoff = timezone.now() - older_than
    waiting = Q(next_attempt_at__isnull=True, created_at__lte=cutoff) | Q(
        next_attempt_at__lte=cutoff
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
            "template": notification.template.code,
            "text": notification.body,
            "status": notification.status,
            "status_reason": notification.status_reason,
            "sent_at": notification.sent_at,
            "rule": notification.firing.reference if notification.firing else None,
        }
        for notification in newest(notifications, at="created_at", before=before, limit=limit)
    ]
