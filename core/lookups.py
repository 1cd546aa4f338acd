"""`field__any_of=values`: what `__in` means, written on PostgreSQL as `= ANY(%s)` with the
values as one array parameter. An import looks thousands of ids up per batch: an IN list
of thousands of parameters costs more to build, bind and parse than the lookup itself."""

from django.core.exceptions import EmptyResultSet
from django.db.models import Field, ForeignObject, lookups


class AnyOf(lookups.In):
    lookup_name = "any_of"

    def as_postgresql(self, compiler, connection):
        if not self.rhs_is_direct_value():
            return super().as_sql(compiler, connection)
        field = self.lhs.output_field
        values = [
            field.get_db_prep_value(value, connection, prepared=True)
            for value in self.rhs
            if value is not None
        ]
        if not values:
            raise EmptyResultSet
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s)", (*lhs_params, values)


Field.register_lookup(AnyOf)
ForeignObject.register_lookup(AnyOf)  # member_id__any_of: relations keep lookups of their own
