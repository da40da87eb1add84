"""What a SQLite database says about a table or query: columns, unique keys, schemas.

Read with ``PRAGMA table_xinfo``/``index_list``/``index_info``; a query's columns
come from a temporary view over it. SQLite has no schemas besides ``main`` (and
``temp``), so any other schema in a manifest is a ManifestError.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.errors import describe_exception
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import (
    SourceColumn,
    SourceShape,
    TargetColumn,
    TargetShape,
    source_from_clause,
)
from dpone_core.executor.transfer.typemap import sqlite_column_type

if TYPE_CHECKING:
    from dpone_core.executor.transfer.connections import Endpoint

__all__ = ["describe_source", "describe_target", "schema_of", "table_exists"]


def schema_of(name: TableName, file: str, field_name: str) -> str:
    """``main`` for a bare name; ManifestError for a schema SQLite does not have."""
    schema = name.schema or "main"
    if schema.lower() not in ("main", "temp"):
        raise ManifestError(
            file,
            field_name,
            f"SQLite has no schema {schema!r}; expected 'table' or 'main.table' "
            f"(got {name.display!r})",
        )
    return schema


def table_exists(db: Endpoint, name: TableName) -> bool:
    schema = db.quote(name.schema or "main")
    return bool(
        db.scalar(
            f"SELECT count(*) FROM {schema}.sqlite_master WHERE type = 'table' AND name = ?",
            (name.name,),
        )
    )


def _unique_keys(
    db: Endpoint, schema: str, table: str, columns: list[TargetColumn]
) -> tuple[list[frozenset[str]], str | None, bool]:
    """(unique column sets, INTEGER PRIMARY KEY column, has any index) of a SQLite table."""
    q_schema, q_table = db.quote(schema), db.quote(table)
    unique_keys: list[frozenset[str]] = []
    indexes = db.fetchall(f"PRAGMA {q_schema}.index_list({q_table})")
    has_pk_index = False
    for _seq, index_name, unique, origin, partial in (tuple(row[:5]) for row in indexes):
        if origin == "pk":
            has_pk_index = True
        if not unique or partial:
            continue
        parts = db.fetchall(f"PRAGMA {q_schema}.index_info({db.quote(str(index_name))})")
        if any(part[1] is None or int(part[1]) < 0 for part in parts):
            continue  # an expression or rowid in the index
        unique_keys.append(frozenset(str(part[2]) for part in parts))
    pk_columns = [column for column in columns if column.primary_key]
    integer_pk: str | None = None
    if (
        len(pk_columns) == 1
        and pk_columns[0].declared.strip().upper() == "INTEGER"
        and not has_pk_index
    ):
        integer_pk = pk_columns[0].name
        unique_keys.append(frozenset({integer_pk}))
    return unique_keys, integer_pk, bool(indexes)


def _columns(db: Endpoint, schema: str, table: str) -> list[TargetColumn]:
    rows = db.fetchall(f"PRAGMA {db.quote(schema)}.table_xinfo({db.quote(table)})")
    return [
        TargetColumn(
            name=str(row[1]),
            declared=str(row[2] or ""),
            not_null=bool(row[3]),
            default=None if row[4] is None else str(row[4]),
            generated=int(row[6]) in (2, 3),
            primary_key=int(row[5]),
        )
        for row in rows
        if int(row[6]) != 1  # hidden columns of virtual tables
    ]


def _table_source(
    db: Endpoint, table: TableName, file: str, field_name: str
) -> tuple[list[SourceColumn], list[frozenset[str]]]:
    schema = schema_of(table, file, field_name)
    found = db.fetchone(
        f"SELECT type FROM {db.quote(schema)}.sqlite_master "
        "WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE",
        (table.name,),
    )
    if found is None:
        raise ManifestError(
            file,
            field_name,
            f"expected an existing table or view; {table.display!r} does not exist in {db.label}",
        )
    columns = _columns(db, schema, table.name)
    unique_keys, _, _ = _unique_keys(db, schema, table.name, columns)
    return [
        SourceColumn(column.name, sqlite_column_type(column.declared)) for column in columns
    ], unique_keys


def _query_source(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> list[SourceColumn]:
    conn = db.sqlite
    probe = f"_dpone_probe_{secrets.token_hex(6)}"
    from_clause = source_from_clause(db, shape)
    try:
        conn.execute(f"SELECT * FROM {from_clause} LIMIT 0").fetchall()
        conn.execute(f"CREATE TEMP VIEW {db.quote(probe)} AS SELECT * FROM {from_clause}")
    except Exception as exc:
        raise ManifestError(
            file, field_name, f"expected a query that runs on {db.label}: {describe_exception(exc)}"
        ) from None
    try:
        rows = conn.execute(f"PRAGMA temp.table_info({db.quote(probe)})").fetchall()
    finally:
        conn.execute(f"DROP VIEW IF EXISTS temp.{db.quote(probe)}")
    return [SourceColumn(str(row[1]), sqlite_column_type(str(row[2] or ""))) for row in rows]


def describe_source(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> tuple[list[SourceColumn], list[frozenset[str]]]:
    if shape.table is not None:
        return _table_source(db, shape.table, file, field_name)
    return _query_source(db, shape, file, field_name), []


def describe_target(
    db: Endpoint, name: TableName, file: str, field_name: str
) -> TargetShape | None:
    schema = schema_of(name, file, field_name)
    found = db.fetchone(
        f"SELECT type, name FROM {db.quote(schema)}.sqlite_master "
        "WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE",
        (name.name,),
    )
    if found is None:
        return None
    if found[0] != "table":
        raise ManifestError(
            file, field_name, f"expected a table; {name.display!r} is a {found[0]} in {db.label}"
        )
    columns = _columns(db, schema, name.name)
    unique_keys, integer_pk, has_indexes = _unique_keys(db, schema, name.name, columns)
    return TargetShape(
        table=name,
        columns=columns,
        unique_keys=unique_keys,
        integer_pk=integer_pk,
        has_indexes=has_indexes,
    )
