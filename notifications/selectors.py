from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from .models import Notification


def notifications_stuck(
    *, status: str, older_than: timedelta, limit: int
) -> QuerySet[Notification]:
    cutoff = timezone.now() - older_than
    return Notification.objects.filter(status=status, created_at__lte=cutoff).order_by(
        "created_at"
    )[:limit]


def notification_timeline(*, member_id: int, before=None, limit: int) -> list[dict]:
    notifications = Notification.objects.filter(member_id=member_id).select_related(
        "template", "firing__rule"
    )
    if before is not None:
        notifications = notifications.filter(created_at__lt=before)
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
        for notification in notifications[:limit]
    ]
