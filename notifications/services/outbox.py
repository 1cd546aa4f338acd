"""Saving messages and webhook events to the outbox.

A message is saved to the outbox in the transaction of the effect that caused it and
published for delivery after commit, so a rolled-back effect never sends anything. The
outbox decides here what will never be sent (a marketing message without consent, or
over the daily cap: suppressed) and what waits for the end of quiet hours.
"""

import json

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from members.models import Member

from .. import selectors
from ..models import Channel, Notification, NotificationTemplate, Purpose
from ..rendering import render
from .delivery import deliveries_enqueue
from .quiet_hours import held_reason, quiet_hours_end

Status = Notification.Status


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
        status_reason=suppressed or held_reason(held_until),
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
