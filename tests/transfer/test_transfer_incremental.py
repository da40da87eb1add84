"""Incremental loads never skip rows silently: ties at the watermark and NULL cursors.

* The watermark is inclusive: a load reads ``cursor >= watermark``, so a row that
  arrives after a load with a cursor *equal* to that load's watermark is picked up
  by the next one. With a key the boundary rows are merged (re-reading them is
  idempotent); without a key a boundary row identical in every column to a target
  row at the watermark is taken to be that row and not appended again.
* Rows whose cursor is NULL follow ``strategy.null_cursor``: ``error`` (default)
  fails the load naming the column, ``include`` merges them on every load (needs a
  key), ``skip`` leaves them out on purpose.
"""

from __future__ import annotations

from typing import Any

import pytest
from transfer_support import Side, connections, context

from dpone_core.executor.results import ProcessResult
from dpone_core.executor.transfer import run_transfer
from dpone_core.manifest import TransferProcess


def _create(side: Side) -> None:
    side.execute(f"CREATE TABLE {side.table('events')} (id integer, payload text, ts integer)")


def _insert(side: Side, rows: list[tuple[Any, ...]]) -> None:
    side.executemany(f"INSERT INTO {side.table('events')} VALUES (%s, %s, %s)", rows)


def _spec(src: Side, dst: Side, key: list[str], null_cursor: str | None = None) -> TransferProcess:
    strategy: dict[str, Any] = {"mode": "incremental", "key": key, "cursor": "ts"}
    if null_cursor is not None:
        strategy["null_cursor"] = null_cursor
    return TransferProcess.model_validate(
        {
            "source": {"connection": "src", "table": src.table("events")},
            "target": {"connection": "dst", "table": dst.table("landing")},
            "strategy": strategy,
            "batch_size": 3,
        }
    )


def _run(spec: TransferProcess, src: Side, dst: Side, run_id: str) -> ProcessResult:
    return run_transfer(spec, context(connections(src, dst), run_id=run_id))


def _target(dst: Side) -> list[tuple[Any, ...]]:
    data = dst.query(f"SELECT id, payload, ts FROM {dst.table('landing')}")
    return sorted(data, key=repr)


@pytest.mark.parametrize("key", [["id"], []], ids=["merge", "append"])
def test_a_row_arriving_later_at_the_watermark_is_loaded(
    pair: tuple[Side, Side], key: list[str]
) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 10), (2, "b", 20)])
    spec = _spec(src, dst, key)
    first = _run(spec, src, dst, "r1")
    assert first.status == "passed", first.errors
    assert first.watermark_after == 20

    # Committed at the same cursor value, after the first load read the source.
    _insert(src, [(3, "c", 20)])
    second = _run(spec, src, dst, "r2")
    assert second.status == "passed", second.errors
    assert _target(dst) == [(1, "a", 10), (2, "b", 20), (3, "c", 20)]
    assert second.inserted_rows == 1

    # Re-reading the boundary again neither duplicates nor changes anything.
    third = _run(spec, src, dst, "r3")
    assert third.status == "passed", third.errors
    assert (third.inserted_rows, third.updated_rows) == (0, 0)
    assert _target(dst) == [(1, "a", 10), (2, "b", 20), (3, "c", 20)]


def test_keyless_ties_keep_distinct_rows_and_drop_only_loaded_ones(
    pair: tuple[Side, Side],
) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 5), (2, "b", 7)])
    spec = _spec(src, dst, [])
    assert _run(spec, src, dst, "r1").status == "passed"
    # Two new rows at the watermark (one with a NULL payload) and one past it.
    _insert(src, [(4, None, 7), (5, "e", 7), (6, "f", 8)])
    second = _run(spec, src, dst, "r2")
    assert second.status == "passed", second.errors
    assert second.inserted_rows == 3
    assert _target(dst) == sorted(
        [(1, "a", 5), (2, "b", 7), (4, None, 7), (5, "e", 7), (6, "f", 8)], key=repr
    )


def test_null_cursor_fails_the_load_by_default(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 10)])
    spec = _spec(src, dst, ["id"])
    assert _run(spec, src, dst, "r1").status == "passed"
    _insert(src, [(2, "b", None)])
    result = _run(spec, src, dst, "r2")
    assert result.status == "failed"
    assert "1 source row has a NULL cursor 'ts'" in result.errors[0], result.errors
    assert "strategy.null_cursor" in result.errors[0], result.errors
    assert _target(dst) == [(1, "a", 10)]


def test_null_cursor_on_the_first_load_fails_too(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 10), (2, "b", None)])
    result = _run(_spec(src, dst, []), src, dst, "r1")
    assert result.status == "failed"
    assert "NULL cursor 'ts'" in result.errors[0], result.errors
    assert not dst.exists("landing")


def test_null_cursor_include_merges_them_on_every_load(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 10), (2, "b", None)])
    spec = _spec(src, dst, ["id"], "include")
    assert _run(spec, src, dst, "r1").status == "passed"
    assert _target(dst) == [(1, "a", 10), (2, "b", None)]
    _insert(src, [(3, "c", None)])
    src.execute(f"UPDATE {src.table('events')} SET payload = 'B' WHERE id = 2")
    second = _run(spec, src, dst, "r2")
    assert second.status == "passed", second.errors
    assert (second.inserted_rows, second.updated_rows) == (1, 1)
    assert _target(dst) == [(1, "a", 10), (2, "B", None), (3, "c", None)]
    assert second.watermark_after == 10


def test_null_cursor_skip_leaves_them_out_on_purpose(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    _create(src)
    _insert(src, [(1, "a", 10), (2, "b", None)])
    spec = _spec(src, dst, [], "skip")
    result = _run(spec, src, dst, "r1")
    assert result.status == "passed", result.errors
    assert _target(dst) == [(1, "a", 10)]


def test_null_cursor_include_needs_a_key() -> None:
    with pytest.raises(ValueError, match="null_cursor"):
        TransferProcess.model_validate(
            {
                "source": {"connection": "a", "table": "t"},
                "target": {"connection": "b", "table": "t"},
                "strategy": {"mode": "incremental", "cursor": "ts", "null_cursor": "include"},
            }
        )
