"""One prepared ``UPDATE`` for many rows: what the ledger and the jobs' runner write in bulk.

Django's ``bulk_update`` builds one statement of ``CASE WHEN id = ... THEN ...`` per field,
whose size (and compile time) grows with rows times fields; here the SQL is one row's, built
once per model, database and set of columns, and ``executemany`` sends the rows. Run it in a
transaction: in autocommit, Python's ``sqlite3`` commits each row of an ``executemany``.
"""

from typing import Any

from django.db import connections, models

_sql: dict[tuple[str, str, tuple[str, ...]], str] = {}


def update_by_pk(
    model: type[models.Model], rows: list[tuple[int, dict[str, Any]]], using: str = "default"
) -> None:
    """Set each row's values (the same names, fields or attnames, for every row) by pk."""
    if not rows:
        return
    connection = connections[using]
    meta = model._meta
    names = tuple(rows[0][1])
    fields = [meta.get_field(name) for name in names]
    key = (meta.label, connection.alias, names)
    sql = _sql.get(key)
    if sql is None:
        quote = connection.ops.quote_name
        assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
        table, pk = quote(meta.db_table), quote(meta.pk.column)
        # Names come from the model's own fields, never from input.
        sql = _sql[key] = f"UPDATE {table} SET {assignments} WHERE {pk} = %s"  # noqa: S608
    params = [
        [
            f.get_db_prep_save(values[name], connection)
            for name, f in zip(names, fields, strict=True)
        ]
        + [pk]
        for pk, values in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
