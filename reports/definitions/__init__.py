"""The reports' definitions by subject (README, Reports): what each column counts. Each
module registers its reports when imported, in the order the reports are listed."""
# ruff: noqa: I001, F401

from . import members, tiers, benefits, activity
