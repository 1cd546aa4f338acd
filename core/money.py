from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")


def money(value: Decimal | int | str) -> Decimal:
    """An amount at cent precision. Databases differ in the scale of SUM()s (SQLite drops
    it), so aggregates pass through here before anyone sees them."""
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)
