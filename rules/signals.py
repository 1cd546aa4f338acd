"""The one signal we keep: ERPs (through the API) and operators (through the admin) both
save orders, and every saved order must be evaluated. The receiver only enqueues, after
commit, with ids; if publishing fails, the order stays pending and the sweeper retries."""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from orders.models import Order

from .services import order_evaluation_enqueue


@receiver(post_save, sender=Order, dispatch_uid="rules.order_saved")
def order_saved(sender, instance: Order, created: bool, **kwargs) -> None:
    if created:
        transaction.on_commit(
            partial(order_evaluation_enqueue, order_id=instance.pk, member_id=instance.member_id),
            robust=True,
        )
