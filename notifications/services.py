"""Every write to templates and the outbox, and delivery through the providers.

A message is saved to the outbox in the transaction of the effect that caused it and
published for delivery after commit. Delivery claims it (queued -> sending) with a
conditional update, so of two tasks for one message only one calls the provider. A
transient failure puts it back in the queue with exponential backoff and jitter, up to
TIERFLOW_DELIVERY_MAX_ATTEMPTS; a permanent one fails it at once.
"""

import json
import logging
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.queue import enqueue
from core.upsert import upsert
from members.models import Member

from . import selectors
from .models import Channel, Consent, Device, Notification, NotificationTemplate, Purpose
from .providers import OutgoingMessage, ProviderError, provider_for
from .rendering import render

logger = logging.getLogger(__name__)
Status = Notification.Status


def notification_template_upsert(
    *,
    code: str,
    channel: str,
    body: str,
    name: str = "",
    purpose: str = Purpose.TRANSACTIONAL,
    body_en: str = "",
) -> tuple[NotificationTemplate, bool]:
    values = {
        "channel": channel,
        "body": body,
        "name": name,
        "purpose": purpose,
        "body_en": body_en,
    }
    return upsert(NotificationTemplate, lookup={"code": code}, values=values)


def amount_text(amount: Decimal) -> str:
    """Money as a shopper reads it in a message: 500, not 500.00; 12.50 stays 12.50."""
    return (
        str(amount.quantize(Decimal(1)))
        if amount == amount.to_integral_value()
        else f"{amount:.2f}"
    )


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
            "expires_at": member.tier_expires_at and timezone.localtime(member.tier_expires_at),
        },
        "coupon": coupon
        and {
            "code": coupon.code,
            "name": coupon.name,
            "min_spend": amount_text(coupon.min_spend),
            # A percentage coupon has no amount off (and maybe no cap): those read "".
            "amount_off": amount_text(coupon.amount_off) if coupon.amount_off else "",
            "percent_off": f"{coupon.percent_off.normalize():f}" if coupon.percent_off else "",
            "max_discount": amount_text(coupon.max_discount) if coupon.max_discount else "",
            # "满300减50", "满300享9折": how a shopper reads the terms (10% off is 9折).
            "discount_text": (f"满{amount_text(coupon.min_spend)}" if coupon.min_spend else "")
            + (
                f"减{amount_text(coupon.amount_off)}"
                if coupon.amount_off
                else f"享{((100 - coupon.percent_off) / 10).normalize():f}折"
            ),
            "expires_at": timezone.localtime(coupon.expires_at),
        },
        "points": points,
        "order": order and {"external_id": order.external_id, "amount": amount_text(order.amount)},
    }


def notification_queue(
    *,
    member: Member,
    template: NotificationTemplate,
    context: dict,
    firing=None,
    channel: str = "",
    suppressed: str = "",
    save: bool = True,
) -> Notification:
    """Render a message, in the member's language, into the outbox; delivery is published
    once the caller's transaction commits, so a rolled-back effect never sends anything.
    A marketing message without the member's consent on the channel, or over the daily
    cap, is suppressed: kept, for the record, with the reason, but never sent (as with
    `suppressed` given by the caller). In quiet hours the message waits until they end.
    With `save=False` the message is only built, for notifications_save to save a batch
    of them at once (transactional ones only: the daily cap counts saved messages)."""
    channel = channel or template.channel
    now = timezone.now()
    if not suppressed and template.purpose == Purpose.MARKETING:
        suppressed = _marketing_block(member, channel, now)
    # Webhooks are for machines: never held.
    held_until = None if suppressed or channel == Channel.WEBHOOK else quiet_hours_end(now)
    notification = Notification(
        member=member,
        template=template,
        channel=channel,
        purpose=template.purpose,
        body=render(template.body_for(member.language), context),
        firing=firing,
        status=Status.SUPPRESSED if suppressed else Status.QUEUED,
        status_reason=suppressed or _held_text(held_until),
        next_attempt_at=held_until,
        created_at=now,
    )
    if save:
        notifications_save([notification])
    return notification


def notifications_save(notifications: list[Notification]) -> None:
    """Save messages built with save=False, in one INSERT, and publish the deliveries of
    those due now once the caller's transaction commits."""
    Notification.objects.bulk_create(notifications)
    due = [n.pk for n in notifications if n.status == Status.QUEUED and n.next_attempt_at is None]
    if due:
        transaction.on_commit(lambda: deliveries_enqueue(due), robust=True)


def _held_text(until) -> str:
    return f"held for quiet hours until {timezone.localtime(until):%H:%M}" if until else ""


def _marketing_block(member: Member, channel: str, now) -> str:
    """Why a marketing message may not go to the member now, or ""."""
    if not selectors.consent_granted(member_id=member.pk, channel=channel):
        return f"no marketing consent for {channel}"
    cap = settings.TIERFLOW_MARKETING_DAILY_CAP
    if (
        cap
        and selectors.marketing_count_on(member_id=member.pk, day=timezone.localdate(now)) >= cap
    ):
        return f"daily marketing cap of {cap} reached"
    return ""


def quiet_hours_end(now: datetime) -> datetime | None:
    """When the quiet hours (TIERFLOW_QUIET_HOURS, in TIME_ZONE) that `now` falls in end,
    or None if `now` is not in them."""
    window = settings.TIERFLOW_QUIET_HOURS
    if window is None:
        return None
    start, end = window
    local = timezone.localtime(now)
    moment = local.time()
    quiet = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not quiet:
        return None
    day = local.date() if moment < end else local.date() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, end))


def webhook_queue(
    *, member: Member, url: str, event: dict, firing=None, save: bool = True
) -> Notification:
    """A signed JSON event for the ERP (or any endpoint), delivered like any message
    (`save`: as notification_queue)."""
    notification = Notification(
        member=member,
        channel=Channel.WEBHOOK,
        url=url,
        body=json.dumps(event, ensure_ascii=False, sort_keys=True),
        firing=firing,
    )
    if save:
        notifications_save([notification])
    return notification


def deliver_enqueue(*, notification_id: int, countdown: float | None = None) -> bool:
    from .tasks import deliver  # tasks import services

    return enqueue(deliver, notification_id, countdown=countdown)


def deliveries_enqueue(ids: list[int]) -> None:
    """Publish the deliveries of many messages due now: a task per chunk of
    TIERFLOW_DELIVERY_CHUNK ids rather than one per message, since a batch that lapses a
    thousand tiers would otherwise spend more time publishing than saving. Each message is
    still claimed on its own, so a chunk's task that dies leaves the rest to the sweeper."""
    from .tasks import deliver_many

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
        .update(next_attempt_at=until, status_reason=_held_text(until))
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


def consent_record(*, member: Member, channel: str, granted: bool, source: str) -> Consent:
    """Record a member's choice about marketing on a channel, with where it came from."""
    if channel not in Channel.values or channel == Channel.WEBHOOK:
        raise ValidationError({"channel": f"'{channel}' is not a messaging channel."})
    if not source.strip():
        raise ValidationError({"source": "Say where the choice came from."})
    return Consent.objects.create(member=member, channel=channel, granted=granted, source=source)


@transaction.atomic
def consent_opt_out(
    *, phone: str = "", member: Member | None = None, channel: str, source: str
) -> int:
    """Withdraw marketing consent ("reply T to unsubscribe"): for the member, or every
    member with the phone number. Returns how many members it applied to."""
    members = [member] if member else list(Member.objects.filter(phone=phone))
    for each in members:
        consent_record(member=each, channel=channel, granted=False, source=source)
    return len(members)


def device_register(*, member: Member, platform: str, token: str) -> tuple[Device, bool]:
    """Register (or refresh) an app installation for push. A token moves to the member
    who registers it last: a shared phone signs in as someone else."""
    device = Device.objects.filter(token=token).first()
    if device is None:
        try:
            with transaction.atomic():
                return Device.objects.create(member=member, platform=platform, token=token), True
        except IntegrityError:
            device = Device.objects.get(token=token)
    device.member, device.platform, device.is_active = member, platform, True
    device.last_seen_at = timezone.now()
    device.save(update_fields=["member", "platform", "is_active", "last_seen_at"])
    return device, False


def device_deactivate(*, token: str) -> bool:
    """The provider says the token is no longer valid (the app was removed)."""
    return bool(Device.objects.filter(token=token, is_active=True).update(is_active=False))


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


def preview_context(*, member) -> dict:
    """What a template would see for the member: their tier, latest coupon and order."""
    from benefits.models import Coupon  # benefits' rules issue the coupons messages mention
    from orders.models import Order

    return message_context(
        member=member,
        coupon=Coupon.objects.filter(member=member).first(),
        order=Order.objects.filter(member=member).order_by("-placed_at").first(),
    )
