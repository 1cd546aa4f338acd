"""Members' choices about marketing, per channel, with where each choice came from. The
latest choice counts (selectors.consent_granted); the outbox suppresses marketing
without it."""

from django.core.exceptions import ValidationError
from django.db import transaction

from core.copy import rows_insert
from members.models import Member

from ..models import Channel, Consent


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


@transaction.atomic
def consents_record_many(choices: list[tuple[int, str, bool]], *, source: str) -> None:
    """Record many members' choices at once, as (member id, channel, granted): an import
    of the consents a business collected before."""
    rows_insert(
        Consent,
        ["member_id", "channel", "granted", "source"],
        [(member_id, channel, granted, source) for member_id, channel, granted in choices],
    )
