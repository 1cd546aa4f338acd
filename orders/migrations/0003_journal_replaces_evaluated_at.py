from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0004_journal"),
        ("orders", "0002_journal_numbers"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="order", name="order_pending"),
        migrations.RemoveIndex(model_name="refund", name="refund_pending"),
        migrations.RemoveField(model_name="order", name="enqueued_at"),
        migrations.RemoveField(model_name="order", name="evaluated_at"),
        migrations.RemoveField(model_name="refund", name="enqueued_at"),
        migrations.RemoveField(model_name="refund", name="evaluated_at"),
        migrations.AddIndex(
            model_name="order",
            index=models.Index(fields=["member", "seq"], name="order_member_seq"),
        ),
        migrations.AddIndex(
            model_name="refund",
            index=models.Index(fields=["member", "seq"], name="refund_member_seq"),
        ),
    ]
