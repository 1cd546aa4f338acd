"""The rules admin: rules with their tools (rules.py) and what they produced (records.py)."""

from . import records, rules  # noqa: F401 (registers the admin classes)
