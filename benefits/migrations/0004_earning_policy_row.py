from django.db import migrations


def the_policy(apps, schema_editor):
    apps.get_model("benefits", "EarningPolicy").objects.get_or_create(pk=1)


class Migration(migrations.Migration):
    """The programme's one earning policy exists from the start, so reading it never
    writes (EarningPolicy.current)."""

    dependencies = [("benefits", "0003_coupon_terms_redemption_bulk_issue_points_keys")]

    operations = [migrations.RunPython(the_policy, migrations.RunPython.noop)]
