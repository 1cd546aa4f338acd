"""The one signal we keep, for each thing the rules must be evaluated for: ERPs (through
the API) and operators (through the admin) both save orders, refunds, engagements and
members, and each must be evaluated. The receiver only enqueues, after commit, with ids;
if publishing fails, the subject stays pending and the sweeper publishes it later."""

from django.db import transaction
from django.db.models.signals import post_save

from .models import Trigger
from .services.evaluation import SUBJECTS, evaluation_enqueue


def _receiver(trigger: str, member_field: str):
    def saved(sender, instance, created: bool, **kwargs) -> None:
        if not created:
            return
        member_id = instance.pk if member_field == "pk" else _member_id(instance, member_field)
        subject_id = None if trigger == Trigger.MEMBER_JOINED else instance.pk
        transaction.on_commit(
            lambda: evaluation_enqueue(member_id=member_id, trigger=trigger, subject_id=subject_id),
            robust=True,
        )

    return saved


def _member_id(instance, path: str) -> int:
    # "member_id", or "order__member_id" for a refund
    for step in path.split("__"):
        instance = getattr(instance, step)
    return instance


def connect() -> None:
    for trigger, (model, member_field) in SUBJECTS.items():
        post_save.connect(
            _receiver(trigger, member_field),
            sender=model,
            weak=False,
            dispatch_uid=f"rules.evaluate_{trigger}",
        )
