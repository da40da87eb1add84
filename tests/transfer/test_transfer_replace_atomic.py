"""``replace`` publishes atomically: a concurrent reader sees the old table or the new one.

A reader thread polls ``count(*)`` and ``sum(v)`` of the target while loads
alternate between two sources of different sizes; every observation must be
one of the two complete tables -- never empty, never partial, never a mix.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from transfer_support import Side, connections, context, libpq_dsn, process, sqlite_side

from dpone_core.executor.transfer import run_transfer

Reader = Callable[[], tuple[int, int]]
SMALL, LARGE = 3_000, 12_000
LOADS = 6


def _seed(side: Side, table: str, count: int, value: int) -> None:
    side.execute(f"CREATE TABLE {side.table(table)} (id integer, v integer, pad text)")
    side.executemany(
        f"INSERT INTO {side.table(table)} (id, v, pad) VALUES (%s, %s, %s)",
        [(i, value, "x" * 40) for i in range(count)],
    )


def _states() -> set[tuple[int, int]]:
    return {(SMALL, SMALL * 1), (LARGE, LARGE * 2)}


def _run_loads(src: Side, dst: Side) -> None:
    conns = connections(src, dst)
    for n in range(LOADS):
        table = "small" if n % 2 == 0 else "large"
        spec = process(src.table(table), dst.table("target"), "replace", batch_size=1000)
        result = run_transfer(spec, context(conns, run_id=f"replace-{n}", process_name=table))
        assert result.status == "passed", result.errors


def _watch(read: Reader, stop: threading.Event, seen: list[tuple[int, int]]) -> None:
    while not stop.is_set():
        seen.append(read())


def _check(src: Side, dst: Side, read_factory: Callable[[], Reader]) -> None:
    _seed(src, "small", SMALL, 1)
    _seed(src, "large", LARGE, 2)
    conns = connections(src, dst)
    first = run_transfer(
        process(src.table("small"), dst.table("target"), "replace"),
        context(conns, run_id="replace-initial", process_name="small"),
    )
    assert first.status == "passed", first.errors

    stop = threading.Event()
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            read = read_factory()
            _watch(read, stop, seen)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        time.sleep(0.05)
        _run_loads(src, dst)
        time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not errors, errors
    assert len(seen) > 10, "the reader barely ran"
    observed = set(seen)
    assert observed <= _states(), f"partial or empty states seen: {observed - _states()}"
    assert observed == _states(), "the reader never saw one of the two tables"


@pytest.mark.slow
@pytest.mark.parametrize("journal", ["delete", "wal"])
def test_replace_is_atomic_on_sqlite(tmp_path: Path, journal: str) -> None:
    src, dst = sqlite_side(tmp_path / "src.db"), sqlite_side(tmp_path / "dst.db")
    assert dst.path is not None
    conn = sqlite3.connect(dst.path)
    conn.execute(f"PRAGMA journal_mode={journal}")
    conn.close()

    def factory() -> Reader:
        assert dst.path is not None
        reader = sqlite3.connect(dst.path, timeout=30, isolation_level=None)

        def read() -> tuple[int, int]:
            count, total = reader.execute(
                "SELECT count(*), coalesce(sum(v), 0) FROM target"
            ).fetchone()
            return int(count), int(total)

        return read

    _check(src, dst, factory)


@pytest.mark.slow
def test_replace_is_atomic_on_postgres(pg_side: Side, tmp_path: Path) -> None:
    src = sqlite_side(tmp_path / "src.db")

    def factory() -> Reader:
        reader = psycopg.connect(libpq_dsn(pg_side.url), autocommit=True)
        sql = f"SELECT count(*), coalesce(sum(v), 0) FROM {pg_side.table('target')}"

        def read() -> tuple[int, int]:
            found = reader.execute(sql).fetchone()
            assert found is not None
            count, total = found
            return int(count), int(total)

        return read

    _check(src, pg_side, factory)


@pytest.mark.slow
def test_replace_is_atomic_for_repeatable_read_readers_on_postgres(
    pg_side: Side, tmp_path: Path
) -> None:
    """A reader whose snapshot predates the swap still sees the old rows (no TRUNCATE)."""
    src = sqlite_side(tmp_path / "src.db")
    _seed(src, "small", SMALL, 1)
    _seed(src, "large", LARGE, 2)
    conns = connections(src, pg_side)
    target = pg_side.table("target")
    run_transfer(
        process(src.table("small"), target, "replace"), context(conns, run_id="a", process_name="s")
    )
    with psycopg.connect(libpq_dsn(pg_side.url)) as reader:
        reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        reader.execute("SELECT 1")  # take the snapshot now
        result = run_transfer(
            process(src.table("large"), target, "replace"),
            context(conns, run_id="b", process_name="l"),
        )
        assert result.status == "passed", result.errors
        old = reader.execute(f"SELECT count(*), sum(v) FROM {target}").fetchone()
        assert old == (SMALL, SMALL)
        reader.rollback()
        new = reader.execute(f"SELECT count(*), sum(v) FROM {target}").fetchone()
        assert new == (LARGE, LARGE * 2)
