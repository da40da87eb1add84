"""What a PostgreSQL database says about a table or query: columns, unique keys, schemas.

Read from ``pg_class``/``pg_attribute``/``pg_index``; a query's columns come from
the cursor description of ``SELECT * FROM (query) LIMIT 0``. Catalog reads end
their (read-only) transaction, so no snapshot outlives them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.dialects.base import literal_sql
from dpone_core.executor.transfer.errors import describe_exception
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import (
    SourceColumn,
    SourceShape,
    TargetColumn,
    TargetShape,
    source_from_clause,
)
from dpone_core.executor.transfer.typemap import pg_column_type

if TYPE_CHECKING:
    from dpone_core.executor.transfer.connections import Endpoint

__all__ = ["check_schema", "describe_source", "describe_target", "table_exists"]


def table_exists(db: Endpoint, name: TableName) -> bool:
    found = db.scalar("SELECT to_regclass(%s)::text", (db.table(name),))
    db.rollback()
    return found is not None


def check_schema(db: Endpoint, name: TableName, file: str, field_name: str) -> None:
    if name.schema is None:
        return
    found = db.scalar("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (name.schema,))
    db.rollback()
    if not found:
        raise ManifestError(
            file,
            field_name,
            f"expected a table in an existing schema; schema {name.schema!r} does not exist "
            f"in {db.label}",
        )


def _unique_keys(db: Endpoint, oid: int) -> list[frozenset[str]]:
    keys = db.fetchall(
        "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s AND i.indisunique AND i.indimmediate AND i.indpred IS NULL "
        "AND i.indexprs IS NULL AND i.indnatts = i.indnkeyatts GROUP BY i.indexrelid",
        (oid,),
    )
    return [frozenset(str(n) for n in row[0]) for row in keys]


def _table_keys(db: Endpoint, table: TableName, file: str, field_name: str) -> list[frozenset[str]]:
    oid = db.scalar("SELECT to_regclass(%s)::oid::bigint", (db.table(table),))
    if oid is None:
        raise ManifestError(
            file,
            field_name,
            f"expected an existing table or view; {table.display!r} does not exist in {db.label}",
        )
    return _unique_keys(db, int(oid))


def _query_columns(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> list[SourceColumn]:
    sql = f"SELECT * FROM {source_from_clause(db, shape)} LIMIT 0"
    with db.pg.cursor() as cur:
        try:
            cur.execute(literal_sql(sql), ())
        except Exception as exc:
            raise ManifestError(
                file,
                field_name,
                f"expected a query that runs on {db.label}: {describe_exception(exc)}",
            ) from None
        description = cur.description or []
        return [
            SourceColumn(
                column.name,
                pg_column_type(column.type_display or "text", int(column.type_code)),
            )
            for column in description
        ]


def describe_source(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> tuple[list[SourceColumn], list[frozenset[str]]]:
    try:
        unique_keys: list[frozenset[str]] = []
        if shape.table is not None:
            unique_keys = _table_keys(db, shape.table, file, field_name)
        return _query_columns(db, shape, file, field_name), unique_keys
    finally:
        db.rollback()


def describe_target(
    db: Endpoint, name: TableName, file: str, field_name: str
) -> TargetShape | None:
    found = db.fetchone(
        "SELECT c.oid::bigint, c.relkind::text FROM pg_class c WHERE c.oid = to_regclass(%s)",
        (db.table(name),),
    )
    if found is None:
        return None
    oid, relkind = int(found[0]), str(found[1])
    if relkind not in ("r", "p"):
        kinds = {"v": "view", "m": "materialized view", "f": "foreign table"}
        raise ManifestError(
            file,
            field_name,
            f"expected a table; {name.display!r} is a {kinds.get(relkind, 'relation')} "
            f"in {db.label}",
        )
    rows = db.fetchall(
        "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), a.attnotnull, "
        "a.attgenerated <> '' FROM pg_attribute a "
        "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        (oid,),
    )
    columns = [
        TargetColumn(name=str(r[0]), declared=str(r[1]), not_null=bool(r[2]), generated=bool(r[3]))
        for r in rows
    ]
    has_indexes = bool(db.scalar("SELECT count(*) FROM pg_index WHERE indrelid = %s", (oid,)))
    return TargetShape(
        table=name,
        columns=columns,
        unique_keys=_unique_keys(db, oid),
        has_indexes=has_indexes,
    )
