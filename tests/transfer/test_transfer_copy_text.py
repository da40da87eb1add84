"""SQLite -> PostgreSQL through bulk COPY text on a reader thread: exact, and fails cleanly.

* ``copy_text.format_rows`` sends, byte for byte, what psycopg's ``Copy.write_row``
  sends for the same values (captured from a real COPY through psycopg's own writer),
  for every value a SQLite row can hold, in uniform and mixed columns.
* A load through the reader thread stores every mapped type as a ``write_row`` load
  of the same rows does (compared in the database, as text).
* An error on the reader thread (a text with a NUL, late in the stream) or on the
  server (a value the target column refuses) fails the load, publishes nothing,
  leaves no reader thread behind, and a later load of the same run id goes through.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.copy import LibpqWriter
from transfer_support import (
    Side,
    append_manifest,
    connections,
    context,
    libpq_dsn,
    process,
    sigterm_when,
    sqlite_side,
    start_orchestrated_run,
)

from dpone_core.executor.transfer import run_transfer
from dpone_core.executor.transfer.copy_text import format_rows

VALUES: list[Any] = [
    None,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    0.1,
    -0.0,
    1e300,
    5e-324,
    float("inf"),
    float("-inf"),
    "",
    "plain",
    "None",
    "\\N",
    "tab\there",
    "new\nline",
    "back\\slash",
    "cr\rlf\n",
    "\b\v\f",
    "é ☃ 𝄞",
    b"",
    b"\x00\x01\xff\\",
    True,
    False,
]


class _Capture(LibpqWriter):
    """psycopg's own writer, keeping a copy of every byte it sends."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        super().__init__(cursor)
        self.sent = bytearray()

    def write(self, data: Any) -> None:
        self.sent += bytes(data)
        super().write(data)


def _write_row_bytes(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> bytes:
    width = len(rows[0])
    columns = ", ".join(f"c{i} text" for i in range(width))
    conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS sink{width} ({columns})")
    with conn.cursor() as cur:
        writer = _Capture(cur)
        # Into a text table: every value's text is accepted, so all of it is sent.
        with cur.copy(f"COPY sink{width} FROM STDIN", writer=writer) as copy:
            for row in rows:
                copy.write_row(row)
    conn.rollback()
    return bytes(writer.sent)


def test_bulk_text_is_write_row_text_byte_for_byte(pg_url: str) -> None:
    rnd = random.Random(13)
    batches: list[list[tuple[Any, ...]]] = [[(v,) for v in VALUES], [tuple(VALUES)]]
    for _ in range(300):
        width = rnd.randint(1, 5)
        # Uniform columns (the bulk cases), nullable ones, and mixed ones.
        pools = [rnd.sample(VALUES, rnd.choice((1, 2, 3, len(VALUES)))) for _ in range(width)]
        batches.append(
            [tuple(rnd.choice(pool) for pool in pools) for _ in range(rnd.randint(1, 20))]
        )
    with psycopg.connect(libpq_dsn(pg_url)) as conn:
        for batch in batches:
            assert format_rows(batch).encode() == _write_row_bytes(conn, batch), batch


def test_bulk_text_refuses_nul_like_psycopg() -> None:
    with pytest.raises(ValueError, match="cannot contain NUL"):
        format_rows([(1, "a\x00b")])
    with pytest.raises(ValueError, match="cannot contain NUL"):
        format_rows([(None,), ("a\x00b",)])
    with pytest.raises(TypeError, match="Decimal"):
        from decimal import Decimal

        format_rows([(Decimal(1),)])


SQLITE_DDL = (
    "CREATE TABLE typed (id INTEGER PRIMARY KEY, i INTEGER, r REAL, n NUMERIC(12,2), "
    "dec DECIMAL TEXT(30,10), b BOOLEAN, t TEXT, d DATE, ts TIMESTAMP, tz TIMESTAMPTZ, "
    "tm TIME, j JSON, u UUID, raw BLOB, free)"
)
SQLITE_ROWS: list[tuple[Any, ...]] = [
    (
        1,
        7,
        0.1,
        12.5,
        "12345678901234567890.0123456789",
        1,
        "tab\tnew\nback\\slash\r",
        "2024-05-06",
        "2024-05-06 07:08:09",
        "2024-05-06 07:08:09+02:00",
        "07:08:09",
        '{"k": [1, "a\\tb"]}',
        "6f1e1c64-0b5a-4d43-9a5e-3f0c3b1a2b3c",
        b"\x00\xff\\x",
        "any",
    ),
    (
        2,
        -(2**63),
        float("inf"),
        7,
        "-0.0000000001",
        0,
        "",
        "1999-12-31",
        "1999-12-31 23:59:59.999999",
        "1999-12-31 23:59:59Z",
        "23:59:59.5",
        "[]",
        "00000000-0000-0000-0000-000000000000",
        b"",
        3.5,
    ),
    (3, None, None, None, None, None, None, None, None, None, None, None, None, None, None),
    (
        4,
        2**63 - 1,
        float("-inf"),
        0.30000000000000004,
        "NaN",
        1,
        "é ☃ 𝄞 \\N None",
        "2024-02-29",
        "2024-02-29 00:00:00",
        "2024-02-29 00:00:00-05:30",
        "00:00:00",
        "null",
        "6F1E1C64-0B5A-4D43-9A5E-3F0C3B1A2B3C",
        b"\x01",
        b"\x02",
    ),
]


def _typed_source(path: Path) -> Side:
    src = sqlite_side(path)
    src.execute(SQLITE_DDL)
    src.executemany(f"INSERT INTO typed VALUES ({', '.join('?' * 15)})", SQLITE_ROWS)
    return src


def test_every_mapped_type_lands_as_write_row_lands_it(tmp_path: Path, pg_side: Side) -> None:
    src = _typed_source(tmp_path / "source.db")
    spec = process("typed", pg_side.table("typed"), "replace", batch_size=2)
    result = run_transfer(spec, context(connections(src, pg_side)))
    assert result.status == "passed", result.errors
    # The same rows through psycopg's write_row into a second table of the same shape.
    oracle = pg_side.table("oracle")
    with psycopg.connect(libpq_dsn(pg_side.url)) as conn:
        conn.execute(f"CREATE TABLE {oracle} (LIKE {pg_side.table('typed')})")
        with conn.cursor() as cur, cur.copy(f"COPY {oracle} FROM STDIN") as copy:
            for row in src.query("SELECT * FROM typed"):
                copy.write_row(row)
        conn.commit()
    as_text = "SELECT t::text FROM {} AS t ORDER BY id"
    loaded = pg_side.query(as_text.format(pg_side.table("typed")))
    assert loaded == pg_side.query(as_text.format(oracle))
    assert len(loaded) == len(SQLITE_ROWS)


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "dpone-copy-reader"]


def _orders(path: Path, rows: int, bad_at: int | None) -> Side:
    src = sqlite_side(path)
    src.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, note TEXT)")
    src.executemany(
        "INSERT INTO orders VALUES (?, ?)",
        [(i, "a\x00b" if i == bad_at else f"note {i}") for i in range(1, rows + 1)],
    )
    return src


@pytest.mark.parametrize("target_exists", [False, True], ids=["new", "existing"])
def test_reader_error_fails_the_load_and_publishes_nothing(
    tmp_path: Path, pg_side: Side, target_exists: bool
) -> None:
    src = _orders(tmp_path / "source.db", 5_000, bad_at=4_321)
    if target_exists:
        pg_side.execute(f"CREATE TABLE {pg_side.table('t')} (order_id bigint, note text)")
    spec = process("orders", pg_side.table("t"), "append", batch_size=100)
    result = run_transfer(spec, context(connections(src, pg_side)))
    assert result.status == "failed"
    assert "ValueError: PostgreSQL text fields cannot contain NUL" in result.errors[0]
    assert not _reader_threads()
    assert pg_side.exists("t") is target_exists
    if target_exists:
        assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('t')}") == [(0,)]
    assert not [name for name in pg_side.tables() if name.startswith("_dpone_stg_")]
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('_dpone_loads')}") == [(0,)]
    # The same run, once the source is fixed, loads everything exactly once.
    src.execute("UPDATE orders SET note = 'fixed' WHERE order_id = 4321")
    again = run_transfer(spec, context(connections(src, pg_side)))
    assert again.status == "passed", again.errors
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('t')}") == [(5_000,)]


def test_server_error_stops_the_reader(tmp_path: Path, pg_side: Side) -> None:
    src = sqlite_side(tmp_path / "source.db")
    src.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, qty)")
    src.executemany(
        "INSERT INTO orders VALUES (?, ?)",
        [(i, "many" if i == 2_500 else i) for i in range(1, 50_001)],
    )
    pg_side.execute(f"CREATE TABLE {pg_side.table('t')} (order_id bigint, qty bigint)")
    spec = process("orders", pg_side.table("t"), "append", batch_size=100)
    result = run_transfer(spec, context(connections(src, pg_side)))
    assert result.status == "failed"
    assert "invalid input syntax for type bigint" in result.errors[0], result.errors
    assert not _reader_threads()
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('t')}") == [(0,)]


def test_prefetch_hands_over_items_then_the_error() -> None:
    from dpone_core.executor.transfer.prefetch import Prefetch

    def produce() -> Any:
        yield 1
        yield 2
        raise RuntimeError("source broke")

    got: list[int] = []
    with (
        pytest.raises(RuntimeError, match="source broke"),
        Prefetch(produce, depth=1, name="t") as items,
    ):
        got.extend(items)
    assert got == [1, 2]


def test_prefetch_close_stops_an_endless_producer() -> None:
    from dpone_core.executor.transfer.prefetch import Prefetch

    closed = threading.Event()

    def produce() -> Any:
        try:
            n = 0
            while True:
                n += 1
                yield n
        finally:
            closed.set()

    with Prefetch(produce, depth=2, name="endless") as items:
        for item in items:
            if item == 3:
                break
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "endless"]


def _copying(url: str, schema: str) -> bool:
    """A COPY into a table of ``schema`` is running (and has rows in)."""
    with psycopg.connect(libpq_dsn(url), autocommit=True) as conn:
        row = conn.execute(
            # The staging table is not committed, so it is found by the COPY's text.
            "SELECT count(*) FROM pg_stat_progress_copy p JOIN pg_stat_activity a USING (pid) "
            "WHERE a.query LIKE 'COPY %%' AND strpos(a.query, %s) > 0 "
            "AND p.tuples_processed > 0",
            (f'"{schema}"',),
        ).fetchone()
    return bool(row and row[0])


def test_sigterm_during_the_copy_ends_cleanly_and_publishes_nothing(
    tmp_path: Path, pg_side: Side
) -> None:
    import json

    src = sqlite_side(tmp_path / "source.db")
    src.execute("CREATE TABLE orders (order_id INTEGER PRIMARY KEY, note TEXT, amount REAL)")
    src.executemany(
        "INSERT INTO orders VALUES (?, ?, ?)", ((i, f"n{i}", i / 3) for i in range(1, 1_500_001))
    )
    target = pg_side.table("landing")
    conns = connections(src, pg_side)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    proc = start_orchestrated_run(workspace, append_manifest(conns, target, batch_size=1000))
    out, err = sigterm_when(
        proc, lambda: _copying(pg_side.url, str(pg_side.schema)), "the COPY", timeout=60
    )
    assert proc.returncode == 1, err
    assert "Traceback" not in err, err
    assert "SIGTERM" in err, err
    assert json.loads(out)["blockers"] == ["run.interrupted"]
    assert not pg_side.exists("landing")
    assert pg_side.query(f"SELECT count(*) FROM {pg_side.table('_dpone_loads')}") == [(0,)]
    assert not _copying(pg_side.url, str(pg_side.schema))
    # The same load id, started again, loads every row once.
    spec = process("orders", target, "append", batch_size=1000)
    again = run_transfer(spec, context(conns, run_id="r1", process_name="orders"))
    assert again.status == "passed", again.errors
    assert pg_side.query(f"SELECT count(*) FROM {target}") == [(1_500_000,)]
