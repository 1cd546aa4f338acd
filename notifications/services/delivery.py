"""Delivery through the providers: publishing, sending, retrying, and what providers
report back.

Delivery claims a message (queued -> sending) with a conditional update, so of two tasks
for one message only one calls the provider. A transient failure puts it back in the
queue with exponential backoff and jitter, up to TIERFLOW_DELIVERY_MAX_ATTEMPTS; a
permanent one fails it at once. The database, not the broker, is the record of what is
still to send: a sweeper publishes again what a lost task left behind.
"""

import logging
import random
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from core.queue import enqueue

from .. import selectors
from ..models import Channel, Device, Notification
from ..providers import OutgoingMessage, ProviderError, provider_for
from .quiet_hours import held_reason, quiet_hours_end

logger = logging.getLogger(__name__)
Status = Notification.Status


def deliver_enqueue(*, notification_id: int, countdown: float | None = None) -> bool:
    from ..tasks import deliver  # tasks import services

    return enqueue(deliver, notification_id, countdown=countdown)


def deliveries_enqueue(ids: list[int]) -> None:
    """Publish the deliveries of many messages due now: a task per chunk of
    TIERFLOW_DELIVERY_CHUNK ids rather than one per message, since a batch that lapses a
    thousand tiers would otherwise spend more time publishing than saving. Each message is
    still claimed on its own, so a chunk's task that dies leaves the rest to the sweeper."""
    from ..tasks import deliver_many

    if len(ids) == 1:
        deliver_enqueue(notification_id=ids[0])
        return
    chunk = settings.TIERFLOW_DELIVERY_CHUNK
    for start in range(0, len(ids), chunk):
        enqueue(deliver_many, ids[start : start + chunk])


@dataclass(frozen=True)
class Delivery:
    status: str
    retry_in: float | None = None  # seconds, when a transient failure will be retried


def notification_deliver(*, notification_id: int) -> Delivery:
    """Send one queued message. Safe to run twice: only the caller whose conditional
    update moves it from queued to sending goes on to call the provider."""
    now = timezone.now()
    held = _hold_for_quiet_hours(notification_id, now)
    if held:
        return held
    claimed = (
        Notification.objects.filter(pk=notification_id, status=Status.QUEUED)
        .filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        .update(status=Status.SENDING, attempts=F("attempts") + 1, next_attempt_at=None)
    )
    if not claimed:
        current = Notification.objects.filter(pk=notification_id).values_list("status", flat=True)
        return Delivery(current.first() or "missing")
    notification = Notification.objects.select_related("member").get(pk=notification_id)
    recipient = _recipient(notification)
    if not recipient:
        if notification.channel == Channel.WEBHOOK:
            reason = "No webhook URL: set the rule's URL or TIERFLOW_WEBHOOK_URL."
        else:
            reason = f"The member has no {notification.get_channel_display()} address."
        return _finish(notification, Status.SUPPRESSED, reason=reason)
    message = OutgoingMessage(notification.pk, notification.channel, recipient, notification.body)
    provider_name = ""
    try:
        provider = provider_for(notification.channel)
        provider_name = provider.name
        provider_message_id = provider.send(message)
    except ProviderError as exc:
        logger.warning(
            "notification #%s attempt %s failed: %s", notification.pk, notification.attempts, exc
        )
        if exc.permanent or notification.attempts >= settings.TIERFLOW_DELIVERY_MAX_ATTEMPTS:
            return _finish(notification, Status.FAILED, reason=str(exc), provider=provider_name)
        return _retry_later(notification, reason=str(exc), provider=provider_name)
    except Exception as exc:
        # Never leave a claimed message in "sending": fail it where operators can retry it.
        logger.exception("notification #%s: unexpected error while sending", notification.pk)
        reason = f"Unexpected error: {type(exc).__name__}"
        return _finish(notification, Status.FAILED, reason=reason, provider=provider_name)
    return _finish(
        notification, Status.SENT, provider=provider_name, provider_message_id=provider_message_id
    )


def _hold_for_quiet_hours(notification_id: int, now) -> Delivery | None:
    """A message due during quiet hours (a retry, a late task) waits until they end; the
    sweeper publishes it then. Outside quiet hours this costs no query."""
    until = quiet_hours_end(now)
    if until is None:
        return None
    held = (
        Notification.objects.filter(pk=notification_id, status=Status.QUEUED)
        .exclude(channel=Channel.WEBHOOK)
        .update(next_attempt_at=until, status_reason=held_reason(until))
    )
    return Delivery(Status.QUEUED, retry_in=(until - now).total_seconds()) if held else None


def backoff_seconds(attempt: int) -> float:
    """Exponential backoff with jitter: about base x 2^(attempt-1), capped, and spread
    between half and all of that so retries after an outage do not arrive together."""
    base = settings.TIERFLOW_DELIVERY_BACKOFF_SECONDS
    ceiling = min(base * 2 ** (attempt - 1), settings.TIERFLOW_DELIVERY_BACKOFF_MAX_SECONDS)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_later(notification: Notification, *, reason: str, provider: str) -> Delivery:
    delay = backoff_seconds(notification.attempts)
    Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
        status=Status.QUEUED,
        status_reason=f"attempt {notification.attempts} failed: {reason}"[:300],
        provider=provider,
        next_attempt_at=timezone.now() + timedelta(seconds=delay),
    )
    deliver_enqueue(notification_id=notification.pk, countdown=delay)
    return Delivery(Status.QUEUED, retry_in=delay)


def _recipient(notification: Notification) -> str:
    member = notification.member
    if notification.channel == Channel.SMS:
        return member.phone
    if notification.channel == Channel.EMAIL:
        return member.email
    if notification.channel == Channel.WEBHOOK:
        return notification.url or settings.TIERFLOW_WEBHOOK_URL
    # Push: the member's most recently seen app installation.
    device = Device.objects.filter(member=member, is_active=True).first()
    return device.token if device else ""


def _finish(
    notification: Notification,
    status: str,
    *,
    reason: str = "",
    provider: str = "",
    provider_message_id: str = "",
) -> Delivery:
    Notification.objects.filter(pk=notification.pk, status=Status.SENDING).update(
        status=status,
        status_reason=reason[:300],
        provider=provider,
        provider_message_id=provider_message_id,
        sent_at=timezone.now() if status == Status.SENT else None,
    )
    return Delivery(status)


def notification_delivery_report(
    *, provider: str, provider_message_id: str, delivered: bool, reason: str = ""
) -> bool:
    """A provider's delivery report (its callback): a sent message becomes delivered, or
    failed with the provider's reason. Reports for unknown ids, or that arrive twice, or
    after a later report, change nothing. Returns whether a message changed."""
    sent = Notification.objects.filter(
        provider=provider, provider_message_id=provider_message_id, status=Status.SENT
    )
    if delivered:
        return bool(sent.update(status=Status.DELIVERED, delivered_at=timezone.now()))
    reason = f"The provider could not deliver it: {reason or 'no reason given'}"
    return bool(sent.update(status=Status.FAILED, status_reason=reason[:300]))


def notifications_requeue_stuck() -> int:
    """Publish again messages still queued after the grace period (and after their retry
    time), and put back in the queue those left "sending" far longer than any task may run
    (their worker died). A provider that accepted a message just before its worker died
    may then send it twice; that is the price of never losing one."""
    grace = timedelta(seconds=settings.TIERFLOW_PENDING_GRACE_SECONDS)
    abandoned = timedelta(seconds=2 * settings.CELERY_TASK_TIME_LIMIT)
    batch = settings.TIERFLOW_SWEEP_BATCH
    stale = selectors.notifications_stuck(status=Status.SENDING, older_than=abandoned, limit=batch)
    # Back in the queue, due now: published in this same pass.
    Notification.objects.filter(
        pk__in=list(stale.values_list("pk", flat=True)), status=Status.SENDING
    ).update(status=Status.QUEUED, next_attempt_at=timezone.now())
    queued = selectors.notifications_stuck(status=Status.QUEUED, older_than=grace, limit=batch)
    ids = list(queued.values_list("pk", flat=True))
    if ids:
        deliveries_enqueue(ids)
    return len(ids)


def notifications_retry(*, ids: list[int]) -> int:
    """Put failed messages back in the queue (an operator's decision, e.g. after fixing
    the provider's credentials). Messages in any other state are left alone."""
    with transaction.atomic():
        retried = list(
            Notification.objects.filter(pk__in=ids, status=Status.FAILED)
            .select_for_update()
            .values_list("pk", flat=True)
        )
        Notification.objects.filter(pk__in=retried).update(
            status=Status.QUEUED, status_reason="", next_attempt_at=None
        )
        if retried:
            transaction.on_commit(lambda: deliveries_enqueue(retried), robust=True)
    return len(retried)
