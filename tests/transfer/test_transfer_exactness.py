"""Exact values: decimals keep every digit, NaN and infinities survive, or the load says why not.

Rules (docs/manifests.md, "Exact values"):

* PostgreSQL ``numeric`` -> a new SQLite target: ``DECIMAL TEXT(p,s)`` (text affinity,
  the exact text) unless every value of ``numeric(p,s)`` with ``p <= 15`` round-trips
  through a REAL, then ``NUMERIC``; NaN/Infinity stay text either way.
* PostgreSQL ``float`` NaN -> SQLite: the text ``'NaN'`` (a SQLite REAL cannot hold it);
  infinities are REAL infinities.
* SQLite ``DECIMAL TEXT(p,s)`` -> PostgreSQL: ``numeric(p,s)``.
* An existing target column that would round the source's decimals fails the load with
  a ManifestError naming the column.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from transfer_support import Side, connections, context, process, sqlite_side

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer import run_transfer

BIG = "1234567890123456789012345678.1234567890"
NEG = "-9876543210987654321098765432.0000000001"
PATHS = pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])

PG_DDL = (
    "CREATE TABLE {t} (id int PRIMARY KEY, big numeric(38,10), free numeric, "
    "small numeric(10,2), f float8)"
)
PG_ROWS: list[tuple[Any, ...]] = [
    (1, BIG, "NaN", "12.50", "NaN"),
    (2, NEG, "Infinity", "-0.01", "Infinity"),
    (3, "0.0000000001", "-Infinity", "99999999.99", "-Infinity"),
    (4, None, "3.14159265358979323846264338327950288", None, "0.1"),
]


def _pg_source(side: Side) -> None:
    side.execute(PG_DDL.format(t=side.table("nums")))
    side.executemany(
        f"INSERT INTO {side.table('nums')} VALUES (%s, %s::numeric, %s::numeric, %s::numeric, "
        "%s::float8)",
        PG_ROWS,
    )


def _load(src: Side, dst: Side, fast_paths: bool, *, target: str = "landing") -> Any:
    spec = process(src.table("nums"), dst.table(target), "replace")
    return run_transfer(spec, context(connections(src, dst)), fast_paths=fast_paths)


@PATHS
def test_postgres_numeric_into_sqlite_keeps_every_digit(
    pg_side: Side, tmp_path: Path, fast_paths: bool
) -> None:
    _pg_source(pg_side)
    dst = sqlite_side(tmp_path / "target.db")
    result = _load(pg_side, dst, fast_paths)
    assert result.status == "passed", result.errors
    got = dst.query("SELECT id, big, free, small, typeof(small), f FROM landing ORDER BY id")
    assert got == [
        (1, BIG, "NaN", 12.5, "real", "NaN"),
        (2, NEG, "Infinity", -0.01, "real", float("inf")),
        (3, "0.0000000001", "-Infinity", 99999999.99, "real", float("-inf")),
        (4, None, "3.14159265358979323846264338327950288", None, "null", 0.1),
    ]
    types = {row[1]: row[2] for row in dst.query("PRAGMA table_info(landing)")}
    assert types["big"] == "DECIMAL TEXT(38,10)"
    assert types["free"] == "DECIMAL TEXT"
    assert types["small"] == "NUMERIC"
    # The exact text goes on to PostgreSQL again as the same numeric.
    back = Side("postgresql", pg_side.url, schema=pg_side.schema)
    spec = process("landing", back.table("again"), "replace", source="dst", target="pg")
    conns = {"dst": dst.url, "pg": pg_side.url}
    again = run_transfer(spec, context(conns, run_id="back"), fast_paths=fast_paths)
    assert again.status == "passed", again.errors
    assert back.query(
        f"SELECT big::text, free::text, f::text FROM {back.table('again')} ORDER BY id"
    ) == [
        (BIG, "NaN", "NaN"),
        (NEG, "Infinity", "Infinity"),
        ("0.0000000001", "-Infinity", "-Infinity"),
        (None, "3.14159265358979323846264338327950288", "0.1"),
    ]
    assert back.query(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attname = 'big'",
        (back.table("again"),),
    ) == [("numeric(38,10)",)]


@PATHS
def test_postgres_to_postgres_is_exact(pg_side: Side, fast_paths: bool) -> None:
    _pg_source(pg_side)
    result = _load(pg_side, pg_side, fast_paths)
    assert result.status == "passed", result.errors
    columns = "id, big::text, free::text, small::text, f::text"
    assert pg_side.query(
        f"SELECT {columns} FROM {pg_side.table('landing')} ORDER BY id"
    ) == pg_side.query(f"SELECT {columns} FROM {pg_side.table('nums')} ORDER BY id")


def _sqlite_source(side: Side) -> None:
    side.execute(
        "CREATE TABLE nums (id INTEGER PRIMARY KEY, big DECIMAL TEXT(38,10), r REAL, "
        "n NUMERIC(10,2))"
    )
    side.executemany(
        "INSERT INTO nums VALUES (?, ?, ?, ?)",
        [
            (1, BIG, float("inf"), "12.50"),
            (2, "NaN", float("-inf"), "NaN"),
            (3, NEG, 0.1, 7),
            (4, None, "NaN", None),
        ],
    )


@PATHS
def test_sqlite_decimal_text_into_postgres_is_numeric(
    tmp_path: Path, pg_side: Side, fast_paths: bool
) -> None:
    src = sqlite_side(tmp_path / "source.db")
    _sqlite_source(src)
    result = _load(src, pg_side, fast_paths)
    assert result.status == "passed", result.errors
    assert pg_side.query(
        f"SELECT big::text, r::text, n::text FROM {pg_side.table('landing')} ORDER BY id"
    ) == [
        (BIG, "Infinity", "12.50"),
        ("NaN", "-Infinity", "NaN"),
        (NEG, "0.1", "7.00"),
        (None, "NaN", None),
    ]
    assert pg_side.query(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute "
        "WHERE attrelid = to_regclass(%s) AND attnum > 0 ORDER BY attnum",
        (pg_side.table("landing"),),
    ) == [
        ("id", "bigint"),
        ("big", "numeric(38,10)"),
        ("r", "double precision"),
        ("n", "numeric(10,2)"),
    ]


@PATHS
def test_sqlite_to_sqlite_keeps_decimal_text(tmp_path: Path, fast_paths: bool) -> None:
    src = sqlite_side(tmp_path / "source.db")
    _sqlite_source(src)
    dst = sqlite_side(tmp_path / "target.db")
    result = _load(src, dst, fast_paths)
    assert result.status == "passed", result.errors
    query = "SELECT id, big, typeof(big), r, n, typeof(n) FROM nums ORDER BY id"
    assert dst.query(query.replace("nums", "landing")) == src.query(query)
    assert dst.query("SELECT big FROM landing WHERE id = 1") == [(BIG,)]


@PATHS
def test_existing_sqlite_target_that_would_round_is_refused(
    tmp_path: Path, fast_paths: bool
) -> None:
    src = sqlite_side(tmp_path / "source.db")
    _sqlite_source(src)
    dst = sqlite_side(tmp_path / "target.db")
    dst.execute("CREATE TABLE landing (id INTEGER, big NUMERIC, r REAL, n NUMERIC)")
    with pytest.raises(ManifestError) as caught:
        _load(src, dst, fast_paths)
    message = str(caught.value)
    assert "target.table" in message and "'big'" in message, message
    assert "DECIMAL TEXT(38,10)" in message, message
    assert dst.query("SELECT count(*) FROM landing") == [(0,)]


def test_existing_sqlite_target_from_postgres_that_would_round_is_refused(
    pg_side: Side, tmp_path: Path
) -> None:
    _pg_source(pg_side)
    dst = sqlite_side(tmp_path / "target.db")
    # small numeric(10,2) fits a REAL exactly; big numeric(38,10) does not.
    dst.execute("CREATE TABLE landing (id INTEGER, big TEXT, free NUMERIC, small NUMERIC, f REAL)")
    with pytest.raises(ManifestError, match="'free'"):
        _load(pg_side, dst, True)
    dst.execute("DROP TABLE landing")
    dst.execute("CREATE TABLE landing (id INTEGER, big TEXT, free TEXT, small NUMERIC, f REAL)")
    result = _load(pg_side, dst, True)
    assert result.status == "passed", result.errors
    assert dst.query("SELECT big, free, small, f FROM landing WHERE id = 1") == [
        (BIG, "NaN", 12.5, "NaN")
    ]


def test_existing_postgres_target_with_a_smaller_scale_is_refused(pg_side: Side) -> None:
    _pg_source(pg_side)
    pg_side.execute(
        f"CREATE TABLE {pg_side.table('landing')} (id int, big numeric(38,2), free numeric, "
        "small numeric(12,2), f float8)"
    )
    with pytest.raises(ManifestError, match="'big'"):
        _load(pg_side, pg_side, True)
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('landing')}") == [(0,)]


def test_decimal_values_read_back_equal(pg_side: Side, tmp_path: Path) -> None:
    """The SQLite text is the decimal itself, not a float's rendering of it."""
    _pg_source(pg_side)
    dst = sqlite_side(tmp_path / "target.db")
    assert _load(pg_side, dst, True).status == "passed"
    (value,) = dst.query("SELECT big FROM landing WHERE id = 1")[0]
    assert Decimal(value) == Decimal(BIG)
