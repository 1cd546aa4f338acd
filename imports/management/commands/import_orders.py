from imports.command import ImportCommand
from imports.orders import OrdersImport


class Command(ImportCommand):
    help = (
        "Import order history from a CSV or XLSX file (README, Importing): recorded "
        "silently, no rule fires; the members' totals recomputed. Checked whole first."
    )
    importer = OrdersImport
