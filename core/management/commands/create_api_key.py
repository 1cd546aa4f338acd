from django.core.management.base import BaseCommand
from rest_framework_api_key.models import APIKey


class Command(BaseCommand):
    help = "Create an API key for an ERP client. The key is printed once and stored hashed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="Who uses the key, e.g. 'erp-production'.")

    def handle(self, *args, name: str, **options) -> None:
        _, key = APIKey.objects.create_key(name=name)
        self.stdout.write(key)
        self.stderr.write(
            f"Created API key '{name}'. Store it now: only its hash is kept. "
            "Send it as 'Authorization: Bearer <key>'; revoke it in the admin."
        )
