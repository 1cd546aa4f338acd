from io import StringIO

import pytest
from django.core.management import call_command


@pytest.fixture(autouse=True)
def balances_verified(transactional_db):
    """After each end-to-end test, with its data still there: `verify_balances` must find
    no drift between the running totals, the orders and the ledgers (it raises if so)."""
    yield
    out = StringIO()
    call_command("verify_balances", stdout=out)
    assert "No drift" in out.getvalue()
