"""The dialect objects: their capabilities, and their SQL run on the real databases.

Every statement a dialect spells is executed here on a real SQLite file or the
local PostgreSQL (never compared as text only), so a spelling that a database
refuses fails here first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from transfer_support import Side, sqlite_side

from dpone_core.executor.transfer.connections import Endpoint, open_endpoint
from dpone_core.executor.transfer.dialects import (
    DIALECTS,
    POSTGRES,
    SQLITE,
    Dialect,
    PostgresDialect,
    SqliteDialect,
    dialect_for_backend,
)
from dpone_core.executor.transfer.extract import Window, build_extraction
from dpone_core.executor.transfer.ledger import LEDGER_TABLE, ensure_ledger
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import SourceColumn, SourceShape
from dpone_core.executor.transfer.typemap import pg_column_type, sqlite_column_type


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Endpoint, str | None]]:
    """A target endpoint of each dialect, with the schema tests may create tables in."""
    if request.param == "sqlite":
        url, schema = sqlite_side(tmp_path / "db.sqlite").url, None
    else:
        pg: Side = request.getfixturevalue("pg_side")
        url, schema = pg.url, pg.schema
    endpoint = open_endpoint(
        "target", "p", "c", {"c": url}, manifest="m.yml", base_dir=tmp_path, read_only=False
    )
    try:
        yield endpoint, schema
    finally:
        endpoint.close()


def _capabilities(dialect: Dialect) -> dict[str, object]:
    names = (
        "name",
        "placeholder",
        "locks_whole_database",
        "attaches_databases",
        "copy_in",
        "copy_out",
        "binds_any_type",
        "clones_staging",
        "scratch_staging",
        "bigint_type",
        "timestamp_type",
        "distinct_operator",
    )
    return {name: getattr(dialect, name) for name in names}


def test_capability_matrix() -> None:
    assert _capabilities(SQLITE) == {
        "name": "sqlite",
        "placeholder": "?",
        "locks_whole_database": True,
        "attaches_databases": True,
        "copy_in": False,
        "copy_out": False,
        "binds_any_type": False,
        "clones_staging": True,
        "scratch_staging": True,
        "bigint_type": "INTEGER",
        "timestamp_type": "TEXT",
        "distinct_operator": "IS NOT",
    }
    assert _capabilities(POSTGRES) == {
        "name": "postgresql",
        "placeholder": "%s",
        "locks_whole_database": False,
        "attaches_databases": False,
        "copy_in": True,
        "copy_out": True,
        "binds_any_type": True,
        "clones_staging": False,
        "scratch_staging": False,
        "bigint_type": "BIGINT",
        "timestamp_type": "TIMESTAMPTZ",
        "distinct_operator": "IS DISTINCT FROM",
    }


def test_dialects_are_values_found_by_backend_name() -> None:
    assert SqliteDialect() == SQLITE and PostgresDialect() == POSTGRES and SQLITE != POSTGRES
    assert len({SQLITE, SqliteDialect(), POSTGRES}) == 2
    assert dialect_for_backend("sqlite") is SQLITE
    assert dialect_for_backend("postgresql") is POSTGRES
    assert dialect_for_backend("mysql") is None
    assert set(DIALECTS.values()) == {SQLITE, POSTGRES}


def test_quoting_is_the_drivers() -> None:
    assert SQLITE.quote('we"ird%') == '"we""ird%"'
    assert POSTGRES.quote('we"ird%') == '"we""ird%%"'  # psycopg always gets parameters
    assert SQLITE.table(TableName("main", "t")) == '"main"."t"'
    assert POSTGRES.columns(["a", "b"]) == '"a", "b"'
    assert SQLITE.escape_query("x LIKE 'p%'") == "x LIKE 'p%'"
    assert POSTGRES.escape_query("x LIKE 'p%'") == "x LIKE 'p%%'"


def test_weird_identifiers_round_trip(db: tuple[Endpoint, str | None]) -> None:
    endpoint, schema = db
    table = TableName(schema, 'we"ird %s name')
    column = 'col "1" 100%'
    endpoint.begin()
    endpoint.run(f"CREATE TABLE {endpoint.table(table)} ({endpoint.quote(column)} integer)")
    endpoint.run(
        f"INSERT INTO {endpoint.table(table)} ({endpoint.quote(column)}) VALUES ({endpoint.ph})",
        (7,),
    )
    assert endpoint.scalar(f"SELECT {endpoint.quote(column)} FROM {endpoint.table(table)}") == 7
    endpoint.rollback()


def test_target_types_across_dialects() -> None:
    pg_numeric = pg_column_type("numeric(12,2)", 1700)
    sqlite_decimal = sqlite_column_type("DECIMAL(8,2)")
    enum = pg_column_type("mood", 20001)
    assert POSTGRES.target_type(pg_numeric) == "numeric(12,2)"
    assert SQLITE.target_type(pg_numeric) == "NUMERIC"
    assert POSTGRES.target_type(sqlite_decimal) == "numeric(8,2)"
    assert SQLITE.target_type(sqlite_decimal) == "DECIMAL(8,2)"
    assert POSTGRES.target_type(enum) == "text"


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (POSTGRES, SQLITE, ['"n"::text AS "n"', 'to_json("a")::text AS "a"', '"i"']),
        (POSTGRES, POSTGRES, ['"n"', '"a"', '"i"']),
    ],
)
def test_export_expressions(source: Dialect, target: Dialect, expected: list[str]) -> None:
    types = [("n", "numeric(12,2)", 1700), ("a", "int4[]", 1007), ("i", "int8", 20)]
    columns = [SourceColumn(name, pg_column_type(declared, oid)) for name, declared, oid in types]
    select = [
        expr if expr == source.quote(c.name) else f"{expr} AS {source.quote(c.name)}"
        for c in columns
        for expr in [source.export_expression(c.type, source.quote(c.name), target)]
    ]
    assert select == expected
    sqlite_col = sqlite_column_type("JSON")
    for target_dialect in (SQLITE, POSTGRES):
        assert SQLITE.export_expression(sqlite_col, '"j"', target_dialect) == '"j"'


def test_extraction_is_spelled_by_the_source_dialect(db: tuple[Endpoint, str | None]) -> None:
    endpoint, schema = db
    shape = SourceShape(
        columns=[SourceColumn("k", sqlite_column_type("INTEGER"))],
        table=TableName(schema, "src"),
        query=None,
    )
    extraction = build_extraction(
        endpoint,
        shape,
        ["k"],
        cursor="k",
        watermark=None,
        incremental=False,
        window=Window("1", "3"),
        target_dialect=endpoint.dialect,
    )
    ph = endpoint.dialect.placeholder
    assert extraction.select_sql.endswith(f'WHERE "k" >= {ph} AND "k" < {ph}')
    endpoint.run(f"CREATE TABLE {endpoint.table(TableName(schema, 'src'))} (k integer)")
    endpoint.run(f"INSERT INTO {endpoint.table(TableName(schema, 'src'))} VALUES (1), (2), (3)")
    endpoint.commit()
    params = tuple(int(p) for p in extraction.params)
    assert sorted(r[0] for r in endpoint.fetchall(extraction.select_sql, params)) == [1, 2]


def _staging_with_duplicates(endpoint: Endpoint, schema: str | None) -> tuple[str, str]:
    stg = endpoint.table(TableName(schema, "stg"))
    tgt = endpoint.table(TableName(schema, "tgt"))
    endpoint.begin()
    endpoint.run(f"CREATE TABLE {stg} (k integer, v text)")
    endpoint.run(f"CREATE TABLE {tgt} (k integer, v text)")
    for k, v in [(1, "a"), (2, "b"), (1, "c"), (None, "n1"), (None, "n2")]:
        endpoint.run(f"INSERT INTO {stg} (k, v) VALUES ({endpoint.ph}, {endpoint.ph})", (k, v))
    return stg, tgt


def test_dedup_key_index_and_upsert(db: tuple[Endpoint, str | None]) -> None:
    endpoint, schema = db
    dialect = endpoint.dialect
    stg, tgt = _staging_with_duplicates(endpoint, schema)
    not_null = '"k" IS NOT NULL'
    assert endpoint.run(dialect.deduplicate_sql(stg, '"k"', not_null)) == 1
    assert sorted(endpoint.fetchall(f"SELECT k, v FROM {stg}"), key=repr) == sorted(
        [(1, "c"), (2, "b"), (None, "n1"), (None, "n2")], key=repr
    )
    target = TableName(schema, "tgt")
    endpoint.run(dialect.key_index_sql("tgt_dpone_key", target, '"k"'))
    endpoint.run(f"INSERT INTO {tgt} (k, v) VALUES (1, 'old'), (2, 'b')")
    head, old, new = dialect.upsert_head(tgt, '"k", "v"', stg, target)
    changed = f'{old}."v" {dialect.distinct_operator} {new}."v"'
    sql = f'{head} ON CONFLICT ("k") DO UPDATE SET "v" = {new}."v" WHERE {changed}'
    endpoint.run(sql)
    got = endpoint.fetchall(f"SELECT k, v FROM {tgt}")
    assert sorted(got, key=repr) == sorted(
        [(1, "c"), (2, "b"), (None, "n1"), (None, "n2")], key=repr
    )
    shape = dialect.describe_target(endpoint, target, file="m.yml", field_name="f")
    assert shape is not None and shape.has_unique_key(["k"])
    endpoint.rollback()


def test_update_head_updates_from_staging(db: tuple[Endpoint, str | None]) -> None:
    endpoint, schema = db
    stg, tgt = _staging_with_duplicates(endpoint, schema)
    endpoint.run(f"INSERT INTO {tgt} (k, v) VALUES (2, 'old')")
    head, old = endpoint.dialect.update_head(tgt, TableName(schema, "tgt"))
    updated = endpoint.run(f'{head}"v" = s."v" FROM {stg} AS s WHERE {old}."k" = s."k"')
    assert updated == 1
    assert endpoint.fetchall(f"SELECT k, v FROM {tgt}") == [(2, "b")]
    endpoint.rollback()


def test_staging_ddl_is_unlogged_only_where_it_can_be(pg_side: Side, tmp_path: Path) -> None:
    endpoint = open_endpoint(
        "target", "p", "c", {"c": pg_side.url}, manifest="m.yml", base_dir=tmp_path
    )
    try:
        for name, becomes_target, persistence in [("a", False, "u"), ("b", True, "p")]:
            table = endpoint.table(TableName(pg_side.schema, name))
            endpoint.run(POSTGRES.staging_ddl(table, "x integer", becomes_target=becomes_target))
            found = endpoint.scalar(
                "SELECT relpersistence::text FROM pg_class WHERE oid = to_regclass(%s)", (table,)
            )
            assert found == persistence
        endpoint.rollback()
    finally:
        endpoint.close()
    assert SQLITE.staging_ddl('"s"', "x", becomes_target=False) == 'CREATE TABLE "s" (x)'


def test_ledger_column_types_are_unchanged(db: tuple[Endpoint, str | None]) -> None:
    """The ledger is an on-disk format: its DDL, as each database stores it, is pinned."""
    endpoint, schema = db
    ledger = TableName(schema, LEDGER_TABLE)
    ensure_ledger(endpoint, ledger)
    assert endpoint.dialect.table_exists(endpoint, ledger)
    shape = endpoint.dialect.describe_target(endpoint, ledger, file="m.yml", field_name="f")
    assert shape is not None
    declared = {column.name: column.declared for column in shape.columns}
    if endpoint.dialect == SQLITE:
        count, stamp, integer, text = "INTEGER", "TEXT", "INTEGER", "TEXT"
    else:
        count, stamp, integer, text = "bigint", "timestamp with time zone", "integer", "text"
    assert declared == {
        "load_id": text,
        "run_id": text,
        "process": text,
        "generation": integer,
        "target_table": text,
        "mode": text,
        "status": text,
        "cursor_column": text,
        "extracted_rows": count,
        "inserted_rows": count,
        "updated_rows": count,
        "final_rows": count,
        "watermark_before": text,
        "watermark_after": text,
        "watermark_type": text,
        "started_at": stamp,
        "committed_at": stamp,
    }


def test_postgres_snapshot_and_load_serialization(pg_side: Side, tmp_path: Path) -> None:
    endpoint = open_endpoint(
        "source", "p", "c", {"c": pg_side.url}, manifest="m.yml", base_dir=tmp_path
    )
    try:
        POSTGRES.begin_snapshot(endpoint.driver)
        assert endpoint.scalar("SHOW transaction_isolation") == "repeatable read"
        assert endpoint.scalar("SHOW transaction_read_only") == "on"
        POSTGRES.end_snapshot(endpoint.driver)
        assert endpoint.scalar("SHOW transaction_isolation") == "read committed"
        endpoint.begin()
        POSTGRES.serialize_loads(endpoint, TableName(pg_side.schema, "t"))
        locks = endpoint.scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        )
        assert locks == 1
        endpoint.rollback()
    finally:
        endpoint.close()


def test_sqlite_snapshot_is_one_read_transaction(tmp_path: Path) -> None:
    side = sqlite_side(tmp_path / "db.sqlite")
    side.execute("CREATE TABLE t (x integer)")
    endpoint = open_endpoint(
        "source", "p", "c", {"c": side.url}, manifest="m.yml", base_dir=tmp_path, read_only=True
    )
    try:
        SQLITE.begin_snapshot(endpoint.driver)
        assert endpoint.sqlite.in_transaction
        SQLITE.end_snapshot(endpoint.driver)
        assert not endpoint.sqlite.in_transaction
    finally:
        endpoint.close()
