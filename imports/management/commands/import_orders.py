from imports.command import ImportCommand
from imports.orders import OrdersImport


class Command(ImportCommand):
    help = (
        "Import order history from a CSV or XLSX file (README, Importing): recorded "
        "silently, no rule fires; the members' totals recomputed. Checked whole first."
    )
    importer = OrdersImport

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--first-load",
            action="store_true",
            help="the first orders into a database that has none, before going live: four "
            "times faster, but orders and members are locked, reads included, until it ends",
        )

    def importer_options(self, options: dict) -> dict:
        return {**super().importer_options(options), "first_load": options["first_load"]}
