from django.core.management.base import BaseCommand, CommandError

from benefits.verification import balances_drift


class Command(BaseCommand):
    help = (
        "Recompute every member's running totals from their orders and refunds, and check "
        "the points and growth ledgers (no balance below zero, refunds reversed exactly). "
        "Reports each drift found and exits with status 1 if there is any."
    )

    def handle(self, *args, **options) -> None:
        drift = 0
        for line in balances_drift():
            drift += 1
            self.stdout.write(line)
        if drift:
            raise CommandError(f"{drift} discrepancies found.")
        self.stdout.write(self.style.SUCCESS("No drift: totals and ledgers agree."))
