from imports.command import ImportCommand
from imports.members import MembersImport


class Command(ImportCommand):
    help = (
        "Import members from a CSV or XLSX file (README, Importing): created or updated by "
        "external id, silently; checked whole first."
    )
    importer = MembersImport
