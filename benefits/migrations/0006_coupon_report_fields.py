"""When a coupon was voided and what it took off at the till, for the coupons report.

Existing rows get what can be derived from what was kept:

- voided_at: a coupon is voided only when the order whose rule issued it is refunded in
  full, so a void coupon issued for an order gets the moment of that order's last refund
  (never before the coupon was issued); other void coupons keep it empty.
- discount_given: an amount coupon took its amount off (its minimum spend is normally
  above it); a percentage coupon's share cannot be known, since the basket's amount was
  not kept, so it stays empty and counts as nothing in the report.
"""

from django.db import migrations, models


def derive(apps, schema_editor):
    Coupon = apps.get_model("benefits", "Coupon")
    Refund = apps.get_model("orders", "Refund")
    Coupon.objects.filter(status="redeemed", discount="amount", discount_given__isnull=True).update(
        discount_given=models.F("amount_off")
    )
    void = Coupon.objects.filter(
        status="void", voided_at__isnull=True, firing__order__isnull=False
    ).values_list("pk", "issued_at", "firing__order_id")
    for pk, issued_at, order_id in void.iterator():
        moments = [
            min(refunded_at, recorded_at)
            for refunded_at, recorded_at in Refund.objects.filter(order_id=order_id).values_list(
                "refunded_at", "recorded_at"
            )
        ]
        if moments:
            Coupon.objects.filter(pk=pk).update(voided_at=max(max(moments), issued_at))


class Migration(migrations.Migration):
    dependencies = [
        ("benefits", "0005_job_runner"),
        ("orders", "0001_initial"),
        ("rules", "0002_tier_changed_trigger"),
    ]

    operations = [
        migrations.AddField(
            model_name="coupon",
            name="discount_given",
            field=models.DecimalField(
                blank=True,
                decimal_places=2,
                max_digits=12,
                null=True,
                verbose_name="discount given",
            ),
        ),
        migrations.AddField(
            model_name="coupon",
            name="voided_at",
            field=models.DateTimeField(blank=True, null=True, verbose_name="voided"),
        ),
        migrations.RunPython(derive, migrations.RunPython.noop),
    ]
