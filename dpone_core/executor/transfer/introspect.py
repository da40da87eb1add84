"""What the databases say about the source and the target, checked against the manifest.

Problems the user must fix (a missing source table, a query that does not run,
a key or cursor column that does not exist, a target table without the source's
columns) are raised as :class:`~dpone_core.errors.ManifestError` naming the field.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.connections import Endpoint, literal_sql
from dpone_core.executor.transfer.errors import describe_exception
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.typemap import ColumnType, pg_column_type, sqlite_column_type

__all__ = [
    "SourceColumn",
    "SourceShape",
    "TargetColumn",
    "TargetShape",
    "check_target_schema",
    "describe_source",
    "describe_target",
    "source_from_clause",
]

SUBQUERY_ALIAS = "_dpone_q"


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class SourceShape:
    columns: list[SourceColumn]
    table: TableName | None
    query: str | None
    #: Column sets of the source table's unique indexes: a key among them needs no
    #: de-duplication before an upsert.
    unique_keys: list[frozenset[str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> SourceColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True)
class TargetColumn:
    name: str
    declared: str
    not_null: bool = False
    default: str | None = None
    generated: bool = False
    primary_key: int = 0


@dataclass(frozen=True)
class TargetShape:
    table: TableName
    columns: list[TargetColumn]
    #: Column sets of the unique, non-partial indexes/constraints (ON CONFLICT arbiters).
    unique_keys: list[frozenset[str]] = field(default_factory=list)
    #: SQLite: the INTEGER PRIMARY KEY column (an alias of the rowid), if any.
    integer_pk: str | None = None
    has_indexes: bool = False

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def insertable(self) -> list[TargetColumn]:
        return [column for column in self.columns if not column.generated]

    def declared(self, name: str) -> str:
        for column in self.columns:
            if column.name == name:
                return column.declared
        raise KeyError(name)

    def has_unique_key(self, key: Sequence[str]) -> bool:
        return frozenset(key) in self.unique_keys


def _sqlite_schema(db: Endpoint, name: TableName, file: str, field_name: str) -> str:
    schema = name.schema or "main"
    if schema.lower() not in ("main", "temp"):
        raise ManifestError(
            file,
            field_name,
            f"SQLite has no schema {schema!r}; expected 'table' or 'main.table' "
            f"(got {name.display!r})",
        )
    return schema


def source_from_clause(db: Endpoint, shape: SourceShape, *, schema: str | None = None) -> str:
    """``FROM`` target of the extraction: the table (optionally in another schema) or the query.

    ``%`` in a query is doubled for psycopg, which always receives a parameter tuple.
    """
    if shape.table is not None:
        table = shape.table if schema is None else TableName(schema, shape.table.name)
        return db.table(table)
    assert shape.query is not None
    query = shape.query.replace("%", "%%") if db.dialect == "postgresql" else shape.query
    return f"(\n{query}\n) AS {SUBQUERY_ALIAS}"


def _clean_query(query: str) -> str:
    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _check_unique(names: list[str], file: str, field_name: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ManifestError(
                file,
                field_name,
                f"expected distinct column names; {name!r} appears more than once "
                "(alias the columns)",
            )
        seen.add(name)


def describe_source(
    db: Endpoint, *, table: str | None, query: str | None, file: str, process: str
) -> SourceShape:
    """Columns and types of the source table or query; ManifestError if it does not exist."""
    if table is not None:
        field_name = f"processes.{process}.source.table"
        name = TableName.parse(table, file=file, field=field_name)
        shape = SourceShape(columns=[], table=name, query=None)
    else:
        field_name = f"processes.{process}.source.query"
        text = _clean_query(query or "")
        if not text:
            raise ManifestError(file, field_name, "expected a SELECT statement (got nothing)")
        shape = SourceShape(columns=[], table=None, query=text)
    if db.dialect == "sqlite":
        columns, unique_keys = _sqlite_source(db, shape, file, field_name)
    else:
        columns, unique_keys = _pg_source(db, shape, file, field_name)
    _check_unique([column.name for column in columns], file, field_name)
    if not columns:
        raise ManifestError(file, field_name, "expected a source with at least one column")
    return SourceShape(
        columns=columns, table=shape.table, query=shape.query, unique_keys=unique_keys
    )


def _sqlite_unique_keys(
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


def _sqlite_columns(db: Endpoint, schema: str, table: str) -> list[TargetColumn]:
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


def _pg_unique_keys(db: Endpoint, oid: int) -> list[frozenset[str]]:
    keys = db.fetchall(
        "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
        "WHERE i.indrelid = %s AND i.indisunique AND i.indimmediate AND i.indpred IS NULL "
        "AND i.indexprs IS NULL AND i.indnatts = i.indnkeyatts GROUP BY i.indexrelid",
        (oid,),
    )
    return [frozenset(str(n) for n in row[0]) for row in keys]


def _sqlite_source(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> tuple[list[SourceColumn], list[frozenset[str]]]:
    conn = db.sqlite
    if shape.table is not None:
        schema = _sqlite_schema(db, shape.table, file, field_name)
        found = db.fetchone(
            f"SELECT type FROM {db.quote(schema)}.sqlite_master "
            "WHERE type IN ('table', 'view') AND name = ? COLLATE NOCASE",
            (shape.table.name,),
        )
        if found is None:
            raise ManifestError(
                file,
                field_name,
                f"expected an existing table or view; {shape.table.display!r} does not exist "
                f"in {db.label}",
            )
        columns = _sqlite_columns(db, schema, shape.table.name)
        unique_keys, _, _ = _sqlite_unique_keys(db, schema, shape.table.name, columns)
        return [
            SourceColumn(column.name, sqlite_column_type(column.declared)) for column in columns
        ], unique_keys
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
    return [SourceColumn(str(row[1]), sqlite_column_type(str(row[2] or ""))) for row in rows], []


def _pg_source(
    db: Endpoint, shape: SourceShape, file: str, field_name: str
) -> tuple[list[SourceColumn], list[frozenset[str]]]:
    pg = db.pg
    try:
        unique_keys: list[frozenset[str]] = []
        if shape.table is not None:
            oid = db.scalar("SELECT to_regclass(%s)::oid::bigint", (db.table(shape.table),))
            if oid is None:
                raise ManifestError(
                    file,
                    field_name,
                    f"expected an existing table or view; {shape.table.display!r} does not "
                    f"exist in {db.label}",
                )
            unique_keys = _pg_unique_keys(db, int(oid))
        sql = f"SELECT * FROM {source_from_clause(db, shape)} LIMIT 0"
        with pg.cursor() as cur:
            try:
                cur.execute(literal_sql(sql), ())
            except Exception as exc:
                raise ManifestError(
                    file,
                    field_name,
                    f"expected a query that runs on {db.label}: {describe_exception(exc)}",
                ) from None
            description = cur.description or []
            columns = [
                SourceColumn(
                    column.name,
                    pg_column_type(column.type_display or "text", int(column.type_code)),
                )
                for column in description
            ]
            return columns, unique_keys
    finally:
        db.rollback()


def check_target_schema(db: Endpoint, name: TableName, *, file: str, field_name: str) -> None:
    """The target's schema must exist (the ledger and staging tables are created in it)."""
    if db.dialect == "sqlite":
        _sqlite_schema(db, name, file, field_name)
        return
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


def describe_target(
    db: Endpoint, name: TableName, *, file: str, field_name: str
) -> TargetShape | None:
    """The target table's columns and unique keys, or None when it does not exist yet."""
    if db.dialect == "sqlite":
        return _sqlite_target(db, name, file, field_name)
    return _pg_target(db, name, file, field_name)


def _sqlite_target(db: Endpoint, name: TableName, file: str, field_name: str) -> TargetShape | None:
    schema = _sqlite_schema(db, name, file, field_name)
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
    columns = _sqlite_columns(db, schema, name.name)
    unique_keys, integer_pk, has_indexes = _sqlite_unique_keys(db, schema, name.name, columns)
    return TargetShape(
        table=name,
        columns=columns,
        unique_keys=unique_keys,
        integer_pk=integer_pk,
        has_indexes=has_indexes,
    )


def _pg_target(db: Endpoint, name: TableName, file: str, field_name: str) -> TargetShape | None:
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
        unique_keys=_pg_unique_keys(db, oid),
        has_indexes=has_indexes,
    )
