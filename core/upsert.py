from typing import Any, TypeVar

from django.db import models

M = TypeVar("M", bound=models.Model)


def upsert(
    model: type[M], *, lookup: dict[str, Any], values: dict[str, Any], validate_unique: bool = True
) -> tuple[M, bool]:
    """Create or update the row matching `lookup` (e.g. its code) with `values`, validated.
    Returns (row, changed); an unchanged row is not saved, so loading the same programme
    twice writes nothing."""
    row = model.objects.filter(**lookup).first()
    if row is not None and all(getattr(row, name) == value for name, value in values.items()):
        return row, False
    row = row or model(**lookup)
    for name, value in values.items():
        setattr(row, name, value)
    row.full_clean(validate_unique=validate_unique)
    row.save()
    return row, True
