import django.db.models.deletion
from django.db import migrations, models
from django.db.models import OuterRef, Subquery


def refunds_know_their_member(apps, schema_editor):
    Order = apps.get_model("orders", "Order")
    Refund = apps.get_model("orders", "Refund")
    Refund.objects.update(
        member_id=Subquery(Order.objects.filter(pk=OuterRef("order_id")).values("member_id")[:1])
    )


class Migration(migrations.Migration):
    """Orders and refunds become numbered events of their member's journal; a refund
    keeps its member (the journal's numbering is taken in members 0004)."""

    dependencies = [
        ("members", "0003_tier_lifecycle_member_language"),
        ("orders", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="order",
            name="seq",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="event number"),
        ),
        migrations.AddField(
            model_name="refund",
            name="seq",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="event number"),
        ),
        migrations.AddField(
            model_name="refund",
            name="member",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="members.member",
            ),
        ),
        migrations.RunPython(refunds_know_their_member, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="refund",
            name="member",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="refunds",
                to="members.member",
            ),
        ),
    ]
