"""The one signal we keep: whoever records an event for a member (an order, a refund, an
engagement, joining, a tier change by hand; through the API, the admin or a command)
says so through members.journal.events_recorded. The receiver does one thing: after
commit, it asks for the waiting members to be evaluated. If publishing fails, the events
still wait in the database and the sweeper publishes an evaluation later."""

from django.db import transaction

from members.journal import events_recorded

from .services.evaluation import evaluation_enqueue


def _recorded(sender, member_id: int, **kwargs) -> None:
    transaction.on_commit(evaluation_enqueue, robust=True)


def connect() -> None:
    events_recorded.connect(_recorded, weak=False, dispatch_uid="rules.evaluate_recorded")
