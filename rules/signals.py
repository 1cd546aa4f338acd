"""The one signal we keep, for each thing the rules must be evaluated for: ERPs (through
the API) and operators (through the admin) both save orders, refunds, engagement events
and members, and each must be evaluated. The receiver only enqueues, after commit, with
ids; if publishing fails, the subject stays pending and the sweeper retries."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from members.models import EngagementEvent, Member
from orders.models import Order, Refund

from .models import Trigger
from .services.evaluation import evaluation_enqueue


def _evaluate_after_commit(*, member_id: int, trigger: str, subject_id: int | None) -> None:
    transaction.on_commit(
        lambda: evaluation_enqueue(member_id=member_id, trigger=trigger, subject_id=subject_id),
        robust=True,
    )


@receiver(post_save, sender=Order, dispatch_uid="rules.order_saved")
def order_saved(sender, instance: Order, created: bool, **kwargs) -> None:
    if created:
        _evaluate_after_commit(
            member_id=instance.member_id, trigger=Trigger.ORDER_PAID, subject_id=instance.pk
        )


@receiver(post_save, sender=Refund, dispatch_uid="rules.refund_saved")
def refund_saved(sender, instance: Refund, created: bool, **kwargs) -> None:
    if created:
        _evaluate_after_commit(
            member_id=instance.order.member_id,
            trigger=Trigger.ORDER_REFUNDED,
            subject_id=instance.pk,
        )


@receiver(post_save, sender=EngagementEvent, dispatch_uid="rules.engagement_saved")
def engagement_saved(sender, instance: EngagementEvent, created: bool, **kwargs) -> None:
    if created:
        _evaluate_after_commit(
            member_id=instance.member_id, trigger=Trigger.ENGAGEMENT, subject_id=instance.pk
        )


@receiver(post_save, sender=Member, dispatch_uid="rules.member_saved")
def member_saved(sender, instance: Member, created: bool, **kwargs) -> None:
    if created:
        _evaluate_after_commit(
            member_id=instance.pk, trigger=Trigger.MEMBER_JOINED, subject_id=None
        )
