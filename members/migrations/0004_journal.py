from collections import defaultdict

import django.utils.timezone
from django.db import migrations, models
from django.db.models import F

# Where each kind of event was recorded; on a tie, the order of this list.
EVENTS = [
    ("orders", "Order", "recorded_at"),
    ("orders", "Refund", "recorded_at"),
    ("members", "EngagementEvent", "recorded_at"),
    ("members", "TierChange", "created_at"),
]


def start_journal(apps, schema_editor):
    """Evaluated history keeps number 0; what was still pending is numbered after joining
    (event 1), in the order it was recorded, and the member waits since it was queued."""
    Member = apps.get_model("members", "Member")
    Member.objects.filter(evaluated_at__isnull=False).update(
        event_seq=1, evaluated_seq=1, pending_since=None
    )
    Member.objects.filter(evaluated_at__isnull=True).update(
        event_seq=1, evaluated_seq=0, pending_since=F("enqueued_at")
    )
    pending = defaultdict(list)
    for rank, (app, name, recorded) in enumerate(EVENTS):
        model = apps.get_model(app, name)
        rows = model.objects.filter(evaluated_at__isnull=True).values_list(
            "pk", "member_id", recorded, "enqueued_at"
        )
        for pk, member_id, at, queued in rows:
            pending[member_id].append((at, rank, pk, queued))
    for member_id, events in pending.items():
        events.sort()
        for seq, (_at, rank, pk, _queued) in enumerate(events, start=2):
            app, name, _ = EVENTS[rank]
            apps.get_model(app, name).objects.filter(pk=pk).update(seq=seq)
        member = Member.objects.get(pk=member_id)
        waiting = [queued for *_, queued in events]
        if member.pending_since is not None:
            waiting.append(member.pending_since)
        Member.objects.filter(pk=member_id).update(
            event_seq=len(events) + 1, pending_since=min(waiting)
        )


class Migration(migrations.Migration):
    """Each member's events are numbered in the order they were recorded, and the
    member says how far their evaluation has got (members.journal), instead of an
    "evaluated at" on every event."""

    dependencies = [
        ("members", "0003_tier_lifecycle_member_language"),
        ("orders", "0002_journal_numbers"),
        ("rules", "0003_rule_job_heartbeat"),
    ]

    operations = [
        migrations.AddField(
            model_name="member",
            name="event_seq",
            field=models.PositiveIntegerField(default=1, editable=False),
        ),
        migrations.AddField(
            model_name="member",
            name="evaluated_seq",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="member",
            name="pending_since",
            field=models.DateTimeField(blank=True, default=django.utils.timezone.now, null=True),
        ),
        migrations.AddField(
            model_name="engagementevent",
            name="seq",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="event number"),
        ),
        migrations.AddField(
            model_name="tierchange",
            name="seq",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="event number"),
        ),
        migrations.RunPython(start_journal, migrations.RunPython.noop),
        migrations.RemoveIndex(model_name="engagementevent", name="engagementevent_pending"),
        migrations.RemoveIndex(model_name="member", name="member_pending"),
        migrations.RemoveIndex(model_name="tierchange", name="tierchange_pending"),
        migrations.RemoveField(model_name="engagementevent", name="enqueued_at"),
        migrations.RemoveField(model_name="engagementevent", name="evaluated_at"),
        migrations.RemoveField(model_name="member", name="enqueued_at"),
        migrations.RemoveField(model_name="member", name="evaluated_at"),
        migrations.RemoveField(model_name="tierchange", name="enqueued_at"),
        migrations.RemoveField(model_name="tierchange", name="evaluated_at"),
        migrations.AddIndex(
            model_name="engagementevent",
            index=models.Index(fields=["member", "seq"], name="engagementevent_member_seq"),
        ),
        migrations.AddIndex(
            model_name="member",
            index=models.Index(
                condition=models.Q(("pending_since__isnull", False)),
                fields=["pending_since"],
                name="member_pending_since",
            ),
        ),
        migrations.AddIndex(
            model_name="tierchange",
            index=models.Index(fields=["member", "seq"], name="tierchange_member_seq"),
        ),
    ]
