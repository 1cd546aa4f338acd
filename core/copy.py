"""Inserting many rows at once, for imports: on PostgreSQL by COPY, several times faster
than bulk_create at millions of rows, since no statement is built and no value goes
through the ORM; elsewhere by bulk_create."""

from collections.abc import Iterable, Sequence

from django.db import connection, models
from django.utils import timezone

# Fields whose Python values psycopg writes as the column wants them; any other field's
# values go through the field's own get_db_prep_save.
PLAIN = (
    models.AutoField,
    models.BigAutoField,
    models.BooleanField,
    models.CharField,
    models.DateField,  # DateTimeField too
    models.DecimalField,
    models.ForeignKey,
    models.IntegerField,  # and its small and big kinds
    models.TextField,
)


def rows_insert(model: type[models.Model], fields: Sequence[str], rows: Iterable[Sequence]) -> int:
    """Insert `rows`, each the values of `fields` (attribute names: member_id, not member)
    in that order, as the database stores them (a phone already in E.164); the model's
    other fields take their defaults, the primary key its next value. No save() or
    signal runs. Returns how many rows."""
    given = [model._meta.get_field(name) for name in fields]
    rest = [
        field
        for field in model._meta.concrete_fields
        if field.name not in fields and field.attname not in fields and not field.primary_key
    ]
    if unique := [f.name for f in rest if f.unique and not f.null]:
        raise ValueError(f"Give {', '.join(unique)}: a default is taken once for every row.")
    # A default once per call (a timestamp's now is the same for every row of the call).
    now = timezone.now()
    defaults = {
        field.attname: now
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
        else field.get_default()
        for field in rest
    }
    if connection.vendor != "postgresql":
        names = [field.attname for field in given]
        objects = [model(**dict(zip(names, row, strict=True)), **defaults) for row in rows]
        model.objects.bulk_create(objects)
        return len(objects)
    prepared = [field.get_db_prep_save(defaults[field.attname], connection) for field in rest]
    converters = [
        None if isinstance(field, PLAIN) and not _custom_prep(field) else field for field in given
    ]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in [*given, *rest])
    count = 0
    # The raw cursor's errors as Django's (an IntegrityError, not psycopg's own).
    with connection.cursor() as cursor, connection.wrap_database_errors:
        statement = f"COPY {quote(model._meta.db_table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(statement) as copy:
            for row in rows:
                values = [
                    value if convert is None else convert.get_db_prep_save(value, connection)
                    for convert, value in zip(converters, row, strict=True)
                ]
                copy.write_row([*values, *prepared])
                count += 1
    return count


def _custom_prep(field: models.Field) -> bool:
    """A subclass of a plain field that changes how values are stored (a PhoneField
    normalising, an encrypted field): its values are prepared by the field."""
    own = type(field).__mro__
    base = next(cls for cls in own if cls in PLAIN or cls.__module__.startswith("django."))
    return any(
        name in cls.__dict__
        for cls in own[: own.index(base)]
        for name in ("get_prep_value", "get_db_prep_value", "get_db_prep_save")
    )
