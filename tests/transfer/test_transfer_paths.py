"""The load paths agree: SQLite fast paths, the general row path, COPY; queries; windows."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from transfer_support import (
    ORDER_COLUMNS,
    Side,
    connections,
    context,
    create_orders,
    process,
    rows,
    seed_orders,
    sqlite_side,
    update_orders,
)

import dpone_core.executor.transfer.extract as extract
from dpone_core.executor.transfer import run_transfer
from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.extract import Extraction


@pytest.fixture
def src(tmp_path: Path) -> Side:
    side = sqlite_side(tmp_path / "source.db")
    create_orders(side)
    seed_orders(side, range(1, 41))
    return side


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])
@pytest.mark.parametrize("mode", ["append", "merge", "replace"])
def test_sqlite_paths_agree(src: Side, tmp_path: Path, fast_paths: bool, mode: str) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    key = ["order_id"] if mode == "merge" else []
    conns = connections(src, dst)
    spec = process("orders", "landing", mode, key)
    assert run_transfer(spec, context(conns, run_id="a"), fast_paths=fast_paths).status == "passed"
    update_orders(src, [1, 2])
    seed_orders(src, [41])
    # Second load into an existing target: the clone/xfer publish or the upsert.
    result = run_transfer(spec, context(conns, run_id="b"), fast_paths=fast_paths)
    assert result.status == "passed", result.errors
    expected = rows(src, "orders", ORDER_COLUMNS)
    if mode == "append":
        assert len(rows(dst, "landing")) == 40 + 41
    else:
        assert rows(dst, "landing", ORDER_COLUMNS) == expected
    if mode == "merge":
        assert (result.inserted_rows, result.updated_rows) == (1, 2)


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast", "general"])
def test_same_sqlite_file_query_source(src: Side, fast_paths: bool) -> None:
    spec = process(
        None,
        "paid_orders",
        "replace",
        query="SELECT order_id, amount * 2 AS doubled, status FROM orders "
        "WHERE status LIKE 'p%' -- a comment at the end\n;",
    )
    conns = {"src": src.url, "dst": src.url}
    result = run_transfer(spec, context(conns), fast_paths=fast_paths)
    assert result.status == "passed", result.errors
    expected = src.query("SELECT count(*) FROM orders WHERE status = 'paid'")[0][0]
    assert result.final_rows == expected > 0
    assert src.query("SELECT typeof(doubled) FROM paid_orders LIMIT 1") == [("real",)]


def test_query_source_on_another_sqlite_file(src: Side, tmp_path: Path) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    dst.execute("CREATE TABLE orders (unrelated text)")  # must not shadow the source's table
    spec = process(None, "landing", "append", query="SELECT order_id, customer FROM orders")
    result = run_transfer(spec, context(connections(src, dst)))
    assert result.status == "passed", result.errors
    assert result.final_rows == 40


def test_query_source_with_percent_on_postgres(pg_side: Side) -> None:
    create_orders(pg_side)
    seed_orders(pg_side, range(1, 11))
    spec = process(
        None,
        pg_side.table("landing"),
        "replace",
        query=f"SELECT order_id, status FROM {pg_side.table('orders')} WHERE status LIKE 'p%'",
    )
    conns = {"src": pg_side.url, "dst": pg_side.url}
    result = run_transfer(spec, context(conns))
    assert result.status == "passed", result.errors
    expected = pg_side.query(
        f"SELECT count(*) FROM {pg_side.table('orders')} WHERE status LIKE 'p%%'"
    )[0][0]
    assert result.final_rows == expected > 0


def test_window_filters_the_cursor_and_replace_swaps_only_the_window(
    pair: tuple[Side, Side],
) -> None:
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 28))  # updated_at 2024-01-02 .. 2024-01-27 (and 01-01)
    conns = connections(src, dst)
    spec = process(src.table("orders"), dst.table("landing"), "replace", cursor="updated_at")
    full = run_transfer(spec, context(conns, run_id="all"))
    assert full.final_rows == 27
    window = ("2024-01-10", "2024-01-13")
    src.execute(f"UPDATE {src.table('orders')} SET status = 'refunded'")
    sliced = run_transfer(spec, context(conns, run_id="slice", window=window))
    assert sliced.status == "passed", sliced.errors
    assert sliced.extracted_rows == 3
    landed = rows(dst, "landing", "updated_at, status")
    refunded = sorted(str(r[0])[:10] for r in landed if r[1] == "refunded")
    assert refunded == ["2024-01-10", "2024-01-11", "2024-01-12"]
    assert len(landed) == 27


def test_duplicate_keys_in_one_load_keep_the_last_row(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    src.execute(f"CREATE TABLE {src.table('events')} (k integer, v text, seq integer)")
    src.executemany(
        f"INSERT INTO {src.table('events')} (k, v, seq) VALUES (%s, %s, %s)",
        [(1, "a", 1), (2, "b", 2), (1, "c", 3), (None, "n1", 4), (None, "n2", 5)],
    )
    spec = process(
        None,
        dst.table("latest"),
        "merge",
        ["k"],
        query=f"SELECT k, v FROM {src.table('events')} ORDER BY seq",
    )
    result = run_transfer(spec, context(connections(src, dst)))
    assert result.status == "passed", result.errors
    assert rows(dst, "latest") == sorted([(1, "c"), (2, "b"), (None, "n1"), (None, "n2")], key=repr)


def test_merge_into_existing_target_without_unique_key(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 6))
    stamp = "TEXT" if dst.kind == "sqlite" else "timestamp"
    dst.execute(
        f"CREATE TABLE {dst.table('landing')} (order_id integer, customer text, "
        f"amount numeric(10,2), status text, updated_at {stamp}, loaded_by text DEFAULT 'x')"
    )
    conns = connections(src, dst)
    spec = process(src.table("orders"), dst.table("landing"), "merge", ["order_id"])
    assert run_transfer(spec, context(conns, run_id="a")).status == "passed"
    update_orders(src, [2])
    seed_orders(src, [6])
    result = run_transfer(spec, context(conns, run_id="b"))
    assert result.status == "passed", result.errors
    assert (result.inserted_rows, result.updated_rows) == (1, 1)
    assert rows(dst, "landing", ORDER_COLUMNS) == rows(src, "orders", ORDER_COLUMNS)
    assert {r[0] for r in rows(dst, "landing", "loaded_by")} == {"x"}


def test_postgres_to_sqlite_converts_types(pg_side: Side, tmp_path: Path) -> None:
    pg_side.execute(
        f"CREATE TABLE {pg_side.table('typed')} (id bigint primary key, n numeric(12,3), "
        "f double precision, b boolean, ts timestamptz, d date, j jsonb, u uuid, "
        "a int4[], raw bytea, iv interval)"
    )
    pg_side.execute(
        f"INSERT INTO {pg_side.table('typed')} VALUES (1, 12.345, 0.5, true, "
        "'2024-05-06 07:08:09+02', '2024-05-06', '{\"k\": [1, 2]}', "
        "'6f1e1c64-0b5a-4d43-9a5e-3f0c3b1a2b3c', '{1,2,3}', '\\x00ff', '1 day 2 hours')"
    )
    dst = sqlite_side(tmp_path / "target.db")
    spec = process(pg_side.table("typed"), "typed", "replace")
    result = run_transfer(spec, context({"src": pg_side.url, "dst": dst.url}))
    assert result.status == "passed", result.errors
    (row,) = dst.query("SELECT * FROM typed")
    assert row == (
        1,
        12.345,
        0.5,
        1,
        "2024-05-06 05:08:09+00",
        "2024-05-06",
        '{"k": [1, 2]}',
        "6f1e1c64-0b5a-4d43-9a5e-3f0c3b1a2b3c",
        "[1,2,3]",
        b"\x00\xff",
        "1 day 02:00:00",
    )
    declared = [r[2] for r in dst.query("PRAGMA table_info(typed)")]
    assert declared == [
        "INTEGER",
        "NUMERIC",
        "REAL",
        "BOOLEAN",
        "TIMESTAMP",
        "DATE",
        "TEXT",
        "TEXT",
        "TEXT",
        "BLOB",
        "TEXT",
    ]


def test_postgres_to_postgres_keeps_exact_types(pg_side: Side) -> None:
    pg_side.execute("CREATE TYPE " + pg_side.table("mood") + " AS ENUM ('ok', 'meh')")
    pg_side.execute(
        f"CREATE TABLE {pg_side.table('typed')} (id int4, n numeric(12,3), s varchar(40), "
        f"ts timestamptz, j jsonb, a int4[], m {pg_side.table('mood')})"
    )
    pg_side.execute(
        f"INSERT INTO {pg_side.table('typed')} VALUES (1, 1.5, 'x', now(), '{{}}', '{{1}}', 'ok')"
    )
    spec = process(pg_side.table("typed"), pg_side.table("copy"), "replace")
    result = run_transfer(spec, context({"src": pg_side.url, "dst": pg_side.url}))
    assert result.status == "passed", result.errors
    types = pg_side.query(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 ORDER BY attnum",
        (pg_side.table("copy"),),
    )
    assert [t[0] for t in types] == [
        "integer",
        "numeric(12,3)",
        "character varying(40)",
        "timestamp with time zone",
        "jsonb",
        "integer[]",
        "text",
    ]
    assert rows(pg_side, "copy", "id, n, s, j, a, m") == [(1, 1.5, "x", {}, [1], "ok")]


def test_sqlite_to_postgres_type_mapping(tmp_path: Path, pg_side: Side) -> None:
    src = sqlite_side(tmp_path / "source.db")
    src.execute(
        "CREATE TABLE t (i INTEGER, r REAL, n DECIMAL(8,2), b BOOLEAN, s VARCHAR(5), d DATE, "
        "ts DATETIME, j JSON, x BLOB, u)"
    )
    src.execute(
        "INSERT INTO t VALUES (1, 1.5, 2.25, 1, 'long text', '2024-01-02', "
        "'2024-01-02 03:04:05', '{\"a\": 1}', x'01', 'anything')"
    )
    spec = process("t", pg_side.table("t"), "replace")
    result = run_transfer(spec, context({"src": src.url, "dst": pg_side.url}))
    assert result.status == "passed", result.errors
    types = pg_side.query(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = %s::regclass "
        "AND attnum > 0 ORDER BY attnum",
        (pg_side.table("t"),),
    )
    assert [t[0] for t in types] == [
        "bigint",
        "double precision",
        "numeric(8,2)",
        "boolean",
        "text",
        "date",
        "timestamp without time zone",
        "jsonb",
        "bytea",
        "text",
    ]
    assert rows(pg_side, "t") == [
        (
            1,
            1.5,
            2.25,
            True,
            "long text",
            "2024-01-02",
            "2024-01-02 03:04:05",
            {"a": 1},
            b"\x01",
            "anything",
        )
    ]


def test_sqlite_targets_keep_declared_types(src: Side, tmp_path: Path) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    run_transfer(process("orders", "landing", "append"), context(connections(src, dst)))
    declared = [r[2] for r in dst.query("PRAGMA table_info(landing)")]
    assert declared == ["INTEGER", "TEXT", "numeric(10,2)", "TEXT", "TEXT"]


def test_nothing_is_written_to_stdout(
    src: Side, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dst = sqlite_side(tmp_path / "target.db")
    progress = io.StringIO()
    result = run_transfer(
        process("orders", "landing", "append"), context(connections(src, dst), progress=progress)
    )
    assert result.status == "passed"
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "committed into landing" in progress.getvalue()


def test_general_path_streams_in_batches(src: Side, tmp_path: Path) -> None:
    """batch_size bounds what is held: the source is read with fetchmany(batch_size)."""
    dst = sqlite_side(tmp_path / "target.db")
    seen: list[int] = []
    conns = connections(src, dst)
    spec = process("orders", "landing", "append", batch_size=7)
    real = extract.iter_batches

    def spying(
        db: Endpoint, extraction: Extraction, batch_size: int
    ) -> Iterator[list[tuple[Any, ...]]]:
        for batch in real(db, extraction, batch_size):
            seen.append(len(batch))
            yield batch

    extract.iter_batches = spying
    try:
        result = run_transfer(spec, context(conns), fast_paths=False)
    finally:
        extract.iter_batches = real
    assert result.status == "passed"
    assert max(seen) == 7 and sum(seen) == 40
