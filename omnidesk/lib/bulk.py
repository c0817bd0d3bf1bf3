"""Bulk writes the ORM makes expensive."""

from __future__ import annotations

from django.db import connection


def rows_update(model, objects: list, fields: list[str]) -> None:
    """bulk_update in one UPDATE ... FROM (VALUES ...) statement: Django's bulk_update builds a CASE per
    field and row, which costs more CPU than the whole routing decision."""
    if not objects:
        return
    meta = model._meta
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    casts = ", ".join(f"%s::{field.db_type(connection)}" for field in [pk, *columns])
    values = ", ".join([f"({casts})"] * len(objects))
    params = []
    for obj in objects:
        params.append(pk.get_db_prep_save(obj.pk, connection))
        params.extend(field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns)
    quote = connection.ops.quote_name
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in columns)
    names = ", ".join(quote(field.column) for field in [pk, *columns])
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (VALUES {values}) AS v({names}) "  # noqa: S608 (names from the model)
        f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
