import secrets
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from rest_framework_api_key.models import APIKey

from rules.programme.load import programme_load

SEED = Path(settings.BASE_DIR) / "rules" / "programmes" / "seed.yaml"


class Command(BaseCommand):
    help = (
        "Prepare the local demo: load the seed programme, reset the 'admin' login to a new "
        "password and create a new API key. Prints both."
    )

    def handle(self, *args, **options) -> None:
        report = programme_load(SEED.read_text(encoding="utf-8"))
        self.stdout.write(f"Seed programme loaded:\n{report}\n")
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username="admin", defaults={"email": "admin@example.com"}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        _, key = APIKey.objects.create_key(name="demo")
        self.stdout.write(
            self.style.SUCCESS(
                "\n".join(
                    [
                        "",
                        "Admin:    http://127.0.0.1:8000/admin/",
                        f"          user admin, password {password}",
                        "API docs: http://127.0.0.1:8000/api/v1/docs/",
                        f"API key:  {key}",
                        "",
                        "Upgrade a member (see README):",
                        f"  export TIERFLOW_KEY={key}",
                        "",
                    ]
                )
            )
        )
