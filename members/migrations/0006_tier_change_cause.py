from django.db import migrations, models
from django.db.models import Q


def causes_fill(apps, schema_editor):
    """Name the cause of the changes made before it was recorded, from what each change
    kept: its firing, its operator, and the reason the lifecycle wrote."""
    TierChange = apps.get_model("members", "TierChange")
    changes = TierChange.objects.filter(cause="")
    changes.filter(firing__isnull=False).update(cause="rule")
    changes.filter(changed_by__isnull=False).update(cause="manual")
    changes.filter(reason__startswith="refund of order").update(cause="refund")
    changes.filter(Q(reason__startswith="lapsed") | Q(reason__startswith="renewed")).update(
        cause="lapse"
    )
    changes.update(cause="base")  # the base tier given to members recorded before a programme


class Migration(migrations.Migration):
    dependencies = [("members", "0005_phone_e164")]

    operations = [
        migrations.AddField(
            model_name="tierchange",
            name="cause",
            field=models.CharField(
                choices=[
                    ("rule", "a rule"),
                    ("manual", "by hand"),
                    ("lapse", "the tier period ended"),
                    ("refund", "a refund"),
                    ("base", "the base tier given"),
                ],
                default="",
                max_length=10,
                verbose_name="cause",
            ),
            preserve_default=False,
        ),
        migrations.RunPython(causes_fill, migrations.RunPython.noop),
    ]
