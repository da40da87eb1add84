"""Unit tests: progress output, type families, watermark encoding, load ids, names."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer import load_id_for
from dpone_core.executor.transfer.connections import normalize_url
from dpone_core.executor.transfer.dialects import POSTGRES, SQLITE
from dpone_core.executor.transfer.ledger import (
    decode_watermark,
    encode_watermark,
    jsonable,
    max_watermark,
)
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.progress import Progress
from dpone_core.executor.transfer.staging import staging_name
from dpone_core.executor.transfer.typemap import (
    Family,
    pg_column_type,
    sqlite_column_type,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_lines_are_throttled_when_not_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, "orders", clock=clock, tty=False)
    for _ in range(10):
        clock.now += 0.5
        progress.add(1000)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2  # at 2.0s and 4.0s of 5.0s
    assert lines[0] == "dpone: orders: staging 4,000 rows, 2,000 rows/s, 2.0s elapsed"
    progress.finish("done")
    assert out.getvalue().splitlines()[-1] == "dpone: orders: done"
    assert "\r" not in out.getvalue()


def test_progress_redraws_one_line_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, "orders", clock=clock, tty=True)
    for _ in range(5):
        clock.now += 0.2
        progress.add(10)
    progress.finish("done")
    text = out.getvalue()
    assert text.count("\r") == 5
    assert "\n" not in text.split("dpone: orders: done")[0].rstrip("\n")
    assert text.endswith("\ndpone: orders: done\n")


def test_progress_heartbeat_does_not_pretend_to_count() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, "orders", clock=clock, tty=False)
    clock.now += 3
    progress.heartbeat()
    assert out.getvalue() == ("dpone: orders: staging (rows counted at the end), 3.0s elapsed\n")


def test_progress_never_fails_the_load() -> None:
    out = io.StringIO()
    out.close()
    progress = Progress(out, "orders", interval=0)
    progress.add(5)
    progress.finish("done")


@pytest.mark.parametrize(
    ("declared", "family", "postgres"),
    [
        ("INTEGER", Family.INTEGER, "bigint"),
        ("int", Family.INTEGER, "bigint"),
        ("REAL", Family.FLOAT, "double precision"),
        ("DOUBLE PRECISION", Family.FLOAT, "double precision"),
        ("NUMERIC(10,2)", Family.NUMERIC, "numeric(10,2)"),
        ("DECIMAL", Family.NUMERIC, "numeric"),
        ("BOOLEAN", Family.BOOLEAN, "boolean"),
        ("VARCHAR(20)", Family.TEXT, "text"),
        ("DATE", Family.DATE, "date"),
        ("DATETIME", Family.TIMESTAMP, "timestamp"),
        ("TIMESTAMP WITH TIME ZONE", Family.TIMESTAMPTZ, "timestamptz"),
        ("TIME", Family.TIME, "time"),
        ("BLOB", Family.BINARY, "bytea"),
        ("JSON", Family.JSON, "jsonb"),
        ("UUID", Family.UUID, "uuid"),
        ("", Family.UNTYPED, "text"),
        ("GEOMETRY", Family.OTHER, "text"),
    ],
)
def test_sqlite_types(declared: str, family: Family, postgres: str) -> None:
    column = sqlite_column_type(declared)
    assert column.family is family
    assert POSTGRES.target_type(column) == postgres
    assert SQLITE.target_type(column) == declared


@pytest.mark.parametrize(
    ("declared", "oid", "family", "sqlite", "postgres"),
    [
        ("int4", 23, Family.INTEGER, "INTEGER", "int4"),
        ("numeric(12,2)", 1700, Family.NUMERIC, "NUMERIC", "numeric(12,2)"),
        ("timestamptz", 1184, Family.TIMESTAMPTZ, "TIMESTAMP", "timestamptz"),
        ("varchar(5)", 1043, Family.TEXT, "TEXT", "varchar(5)"),
        ("int4[]", 1007, Family.ARRAY, "TEXT", "int4[]"),
        ("jsonb", 3802, Family.JSON, "TEXT", "jsonb"),
        ("mood", 20001, Family.OTHER, "TEXT", "text"),
    ],
)
def test_postgres_types(
    declared: str, oid: int, family: Family, sqlite: str, postgres: str
) -> None:
    column = pg_column_type(declared, oid)
    assert column.family is family
    assert SQLITE.target_type(column) == sqlite
    assert POSTGRES.target_type(column) == postgres


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        2.5,
        Decimal("1.10"),
        "2024-01-01 10:00:00",
        date(2024, 1, 2),
        datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
        b"\x00\x01",
        True,
    ],
)
def test_watermarks_round_trip(value: object) -> None:
    assert decode_watermark(*encode_watermark(value)) == value


def test_max_watermark_ignores_nulls_and_orders_mixed_types_like_sqlite() -> None:
    assert max_watermark([None, 3, 9, 4]) == 9
    assert max_watermark([None, None]) is None
    assert max_watermark([5, "a", 7]) == "a"  # numbers sort before text
    assert jsonable(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00+00:00"
    assert jsonable(Decimal("1.5")) == "1.5"


def test_load_ids_are_deterministic_and_injective() -> None:
    assert load_id_for("r1", "orders", 1) == load_id_for("r1", "orders", 1)
    assert load_id_for("r1", "orders", 1) != load_id_for("r1", "orders", 2)
    assert load_id_for("a/b", "c", 1) != load_id_for("a", "b/c", 1)
    assert len(staging_name(load_id_for("r1", "orders", 1))) <= 63


def test_table_names() -> None:
    assert TableName.parse("landing.orders", file="m", field="f") == TableName("landing", "orders")
    assert TableName.parse("orders", file="m", field="f").display == "orders"
    with pytest.raises(ManifestError) as caught:
        TableName.parse("a.b.c", file="m.yml", field="processes.x.target.table")
    assert caught.value.field == "processes.x.target.table"


def test_postgres_urls_use_psycopg_3() -> None:
    assert normalize_url("postgresql://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
