from celery import shared_task

from .models import Notification
from .services.delivery import notification_deliver, notifications_requeue_stuck


@shared_task
def deliver(notification_id: int) -> str:
    return notification_deliver(notification_id=notification_id).status


@shared_task
def deliver_many(notification_ids: list[int]) -> int:
    """Deliver a chunk of messages one after another; returns how many were sent."""
    sent = Notification.Status.SENT
    return sum(notification_deliver(notification_id=pk).status == sent for pk in notification_ids)


@shared_task
def sweep_queued_notifications() -> int:
    """Re-enqueue messages whose delivery task was lost: never published (broker down at
    commit time), or claimed by a worker that died mid-send."""
    return notifications_requeue_stuck()
