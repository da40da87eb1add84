"""Every strategy on sqlite->sqlite, sqlite->postgres and postgres->postgres.

Each scenario checks the exact target contents after the first load, after the
source changed (updates and inserts) and a new run loaded it, after a restart
of that run (a new generation), and after a resume of it (same run id and
generation: nothing may be published twice).
"""

from __future__ import annotations

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
    update_orders,
)

from dpone_core.executor.results import ProcessResult
from dpone_core.executor.transfer import run_transfer

UPDATED = (3, 5, 8)
INSERTED = (21, 22, 23)


def _load(
    src: Side, dst: Side, mode: str, key: list[str], cursor: str | None, run_id: str, gen: int = 1
) -> ProcessResult:
    spec = process(src.table("orders"), dst.table("landing"), mode, key, cursor)
    result = run_transfer(spec, context(connections(src, dst), run_id=run_id, generation=gen))
    assert result.status == "passed", result.errors
    return result


def _source(src: Side) -> list[tuple[Any, ...]]:
    return rows(src, "orders", ORDER_COLUMNS)


def _target(dst: Side) -> list[tuple[Any, ...]]:
    return rows(dst, "landing", ORDER_COLUMNS)


def _wm(value: Any) -> Any:
    """A reported watermark (ISO text for datetimes) in the form ``rows()`` reads back."""
    return value.replace("T", " ") if isinstance(value, str) else value


def _no_staging_left(dst: Side) -> None:
    assert [t for t in dst.tables() if t.startswith("_dpone_stg_")] == []
    if dst.path is not None:  # SQLite scratch files are deleted after each load
        assert list(dst.path.parent.glob("*.dpone-stg-*")) == []


def _change_source(src: Side) -> None:
    update_orders(src, UPDATED)
    seed_orders(src, INSERTED)


@pytest.fixture
def seeded(pair: tuple[Side, Side]) -> tuple[Side, Side]:
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 21))
    return src, dst


def test_replace(seeded: tuple[Side, Side]) -> None:
    src, dst = seeded
    first = _load(src, dst, "replace", [], None, "r1")
    assert _target(dst) == _source(src)
    assert (first.extracted_rows, first.inserted_rows, first.final_rows) == (20, 20, 20)

    _change_source(src)
    second = _load(src, dst, "replace", [], None, "r2")
    assert _target(dst) == _source(src)
    assert (second.inserted_rows, second.updated_rows, second.final_rows) == (23, 0, 23)

    restarted = _load(src, dst, "replace", [], None, "r2", gen=2)
    assert _target(dst) == _source(src)  # idempotent
    assert restarted.load_id != second.load_id

    resumed = _load(src, dst, "replace", [], None, "r2", gen=2)
    assert resumed.load_id == restarted.load_id
    assert resumed.checkpoint is not None and resumed.checkpoint["already_committed"]
    assert _target(dst) == _source(src)
    _no_staging_left(dst)


def test_append(seeded: tuple[Side, Side]) -> None:
    src, dst = seeded
    v1 = _source(src)
    _load(src, dst, "append", [], None, "r1")
    assert _target(dst) == v1

    _change_source(src)
    v2 = _source(src)
    second = _load(src, dst, "append", [], None, "r2")
    assert second.inserted_rows == 23
    assert _target(dst) == sorted(v1 + v2, key=repr)

    # A restart is a new load: append appends the whole source again (not idempotent).
    _load(src, dst, "append", [], None, "r2", gen=2)
    assert _target(dst) == sorted(v1 + v2 + v2, key=repr)

    # A resume of the same generation must not append anything.
    resumed = _load(src, dst, "append", [], None, "r2", gen=2)
    assert resumed.inserted_rows == 23  # the ledger's counts of the committed load
    assert _target(dst) == sorted(v1 + v2 + v2, key=repr)
    _no_staging_left(dst)


def test_merge(seeded: tuple[Side, Side]) -> None:
    src, dst = seeded
    first = _load(src, dst, "merge", ["order_id"], None, "r1")
    assert _target(dst) == _source(src)
    assert (first.inserted_rows, first.updated_rows) == (20, 0)

    _change_source(src)
    second = _load(src, dst, "merge", ["order_id"], None, "r2")
    assert _target(dst) == _source(src)
    assert (second.extracted_rows, second.inserted_rows, second.updated_rows) == (23, 3, 3)
    assert second.final_rows == 23

    restarted = _load(src, dst, "merge", ["order_id"], None, "r2", gen=2)
    assert _target(dst) == _source(src)  # idempotent
    assert (restarted.inserted_rows, restarted.updated_rows) == (0, 0)  # nothing changed

    _load(src, dst, "merge", ["order_id"], None, "r2", gen=2)
    assert _target(dst) == _source(src)
    _no_staging_left(dst)


def test_incremental_with_key_merges_rows_past_the_watermark(
    seeded: tuple[Side, Side],
) -> None:
    src, dst = seeded
    first = _load(src, dst, "incremental", ["order_id"], "updated_at", "r1")
    assert _target(dst) == _source(src)
    assert first.watermark_before is None
    assert _wm(first.watermark_after) == max(r[4] for r in _source(src))

    _change_source(src)
    second = _load(src, dst, "incremental", ["order_id"], "updated_at", "r2")
    assert _target(dst) == _source(src)
    # Only the updated and the inserted rows are past the first watermark; the inclusive
    # watermark re-reads the one row at it (merged, unchanged).
    assert second.extracted_rows == len(UPDATED) + len(INSERTED) + 1
    assert (second.inserted_rows, second.updated_rows) == (3, 3)
    assert second.watermark_before == first.watermark_after
    assert _wm(second.watermark_after) == max(r[4] for r in _source(src))

    restarted = _load(src, dst, "incremental", ["order_id"], "updated_at", "r2", gen=2)
    assert restarted.extracted_rows == 1  # the row at the watermark, re-read
    assert (restarted.inserted_rows, restarted.updated_rows) == (0, 0)
    assert restarted.watermark_before == restarted.watermark_after == second.watermark_after
    assert _target(dst) == _source(src)
    _no_staging_left(dst)


def test_incremental_without_key_appends_rows_past_the_watermark(
    seeded: tuple[Side, Side],
) -> None:
    src, dst = seeded
    v1 = _source(src)
    first = _load(src, dst, "incremental", [], "updated_at", "r1")
    assert _target(dst) == v1

    _change_source(src)
    newer = [r for r in _source(src) if r[4] > _wm(first.watermark_after)]
    assert len(newer) == len(UPDATED) + len(INSERTED)
    second = _load(src, dst, "incremental", [], "updated_at", "r2")
    assert second.inserted_rows == len(newer)
    assert _target(dst) == sorted(v1 + newer, key=repr)

    _load(src, dst, "incremental", [], "updated_at", "r2", gen=2)
    assert _target(dst) == sorted(v1 + newer, key=repr)  # nothing past the watermark
    _load(src, dst, "incremental", [], "updated_at", "r2", gen=2)
    assert _target(dst) == sorted(v1 + newer, key=repr)
    _no_staging_left(dst)


def test_ledger_records_the_committed_load(seeded: tuple[Side, Side]) -> None:
    src, dst = seeded
    result = _load(src, dst, "incremental", ["order_id"], "updated_at", "run-ledger")
    ledger = dst.query(
        "SELECT load_id, run_id, process, generation, target_table, mode, status, "
        "cursor_column, extracted_rows, inserted_rows, updated_rows, final_rows, "
        f"watermark_before, watermark_after, committed_at FROM {dst.table('_dpone_loads')}"
    )
    assert len(ledger) == 1
    row = ledger[0]
    assert row[:12] == (
        result.load_id,
        "run-ledger",
        "orders",
        1,
        dst.table("landing"),
        "incremental",
        "committed",
        "updated_at",
        20,
        20,
        0,
        20,
    )
    assert row[12] is None
    assert _wm(row[13]) == _wm(result.watermark_after)
    assert row[14] is not None
