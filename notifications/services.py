"""Every write to templates and the outbox, and delivery through the providers."""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.queue import enqueue
from members.models import Member

from . import selectors
from .models import Channel, Notification, NotificationTemplate
from .providers import OutgoingMessage, ProviderError, provider_for
from .rendering import render

logger = logging.getLogger(__name__)


def notification_template_upsert(
    *, code: str, channel: str, body: str, name: str = ""
) -> tuple[NotificationTemplate, bool]:
    values = {"channel": channel, "body": body, "name": name}
    template = NotificationTemplate.objects.filter(code=code).first()
    if template is not None and all(getattr(template, k) == v for k, v in values.items()):
        return template, False
    template = template or NotificationTemplate(code=code)
    for field, value in values.items():
        setattr(template, field, value)
    template.full_clean()
    template.save()
    return template, True


def message_context(*, member: Member, coupon=None, points: int | None = None, order=None) -> dict:
    """The plain values a template may read (see rendering.VARIABLES)."""
    tier = member.tier
    return {
        "member": {"name": member.name, "external_id": member.external_id},
        "tier": tier
        and {
            "code": tier.code,
            "name": tier.name,
            "discount_percent": tier.discount_percent,
            "discount_label": tier.discount_label,
        },
        "coupon": coupon
        and {
            "code": coupon.code,
            "name": coupon.name,
            "min_spend": coupon.min_spend,
            "amount_off": coupon.amount_off,
            "expires_at": timezone.localtime(coupon.expires_at),
        },
        "points": points,
        "order": order and {"external_id": order.external_id, "amount": order.amount},
    }


def notification_queue(
    *, member: Member, template: NotificationTemplate, context: dict, firing=None
) -> Notification:
    """Render and store a message in the outbox; delivery is enqueued once the caller's
    transaction commits, so a rolled-back effect never sends anything."""
    notification = Notification.objects.create(
        member=member,
        template=template,
        channel=template.channel,
        body=render(template.body, context),
        firing=firing,
    )
    transaction.on_commit(lambda: deliver_enqueue(notification_id=notification.pk), robust=True)
    return notification


def deliver_enqueue(*, notification_id: int) -> bool:
    from .tasks import deliver  # tasks import services

    return enqueue(deliver, notification_id)


def notification_deliver(*, notification_id: int) -> str:
    """Send one queued message. Safe to run twice: only the caller whose conditional
    update moves it from queued to sending goes on to call the provider."""
    claimed = Notification.objects.filter(
        pk=notification_id, status=Notification.Status.QUEUED
    ).update(status=Notification.Status.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return (
            Notification.objects.filter(pk=notification_id).values_list("status", flat=True).first()
            or "missing"
        )
    notification = Notification.objects.select_related("member").get(pk=notification_id)
    recipient = _recipient(notification)
    if not recipient:
        return _finish(
            notification,
            Notification.Status.SUPPRESSED,
            reason=f"The member has no {notification.get_channel_display()} address.",
        )
    message = OutgoingMessage(notification.pk, notification.channel, recipient, notification.body)
    provider_name = ""
    try:
        provider = provider_for(notification.channel)
        provider_name = provider.name
        provider_message_id = provider.send(message)
    except ProviderError as exc:
        logger.warning("notification #%s failed: %s", notification.pk, exc)
        return _finish(
            notification, Notification.Status.FAILED, reason=str(exc), provider=provider_name
        )
    except Exception as exc:
        # Never leave a claimed message in "sending": fail it where operators can retry it.
        logger.exception("notification #%s: unexpected error while sending", notification.pk)
        reason = f"Unexpected error: {type(exc).__name__}"
        return _finish(
            notification, Notification.Status.FAILED, reason=reason, provider=provider_name
        )
    return _finish(
        notification,
        Notification.Status.SENT,
        provider=provider.name,
        provider_message_id=provider_message_id,
    )


def _recipient(notification: Notification) -> str:
    member = notification.member
    if notification.channel == Channel.SMS:
        return member.phone
    if notification.channel == Channel.EMAIL:
        return member.email
    return member.external_id  # push and webhook address the member by id


def _finish(
    notification: Notification,
    status: str,
    *,
    reason: str = "",
    provider: str = "",
    provider_message_id: str = "",
) -> str:
    Notification.objects.filter(pk=notification.pk, status=Notification.Status.SENDING).update(
        status=status,
        status_reason=reason[:300],
        provider=provider,
        provider_message_id=provider_message_id,
        sent_at=timezone.now() if status == Notification.Status.SENT else None,
    )
    return status


def notifications_requeue_stuck() -> int:
    """Publish again messages still queued after the grace period, and put back in the
    queue those left "sending" far longer than any task may run (their worker died). A
    provider that accepted a message just before its worker died may then send it twice;
    that is the price of never losing one."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    abandoned = timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)
    status = Notification.Status
    batch = settings.TIERFLOW_SWEEP_BATCH
    stale = selectors.notifications_stuck(status=status.SENDING, older_than=abandoned, limit=batch)
    Notification.objects.filter(
        pk__in=list(stale.values_list("pk", flat=True)), status=status.SENDING
    ).update(status=status.QUEUED)
    queued = selectors.notifications_stuck(status=status.QUEUED, older_than=grace, limit=batch)
    ids = list(queued.values_list("pk", flat=True))
    for notification_id in ids:
        deliver_enqueue(notification_id=notification_id)
    return len(ids)


def notifications_retry(*, ids: list[int]) -> int:
    """Put failed messages back in the queue (an operator's decision, e.g. after fixing
    the provider's credentials). Messages in any other state are left alone."""
    with transaction.atomic():
        retried = list(
            Notification.objects.filter(pk__in=ids, status=Notification.Status.FAILED)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=retried).update(
            status=Notification.Status.QUEUED, status_reason=""
        )
        for notification_id in retried:
            transaction.on_commit(
                lambda pk=notification_id: deliver_enqueue(notification_id=pk), robust=True
            )
    return len(retried)
