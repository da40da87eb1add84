"""Exactly-once under crashes: kill -9 at the staging and publish points, then resume.

The crash hook (``DPONE_TEST_CRASH_AT``) makes a real subprocess SIGKILL itself
after staging (nothing published) or right after the publish commit (the caller
never learns it committed). Re-running the same run id and generation must then
leave the target exactly equal to the source: nothing lost, nothing twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
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
    update_orders,
)

from dpone_core.executor.transfer import run_transfer
from dpone_core.executor.transfer.crash import CRASH_ENV

RUNNER = Path(__file__).with_name("crash_runner.py")


def _spawn(
    src: Side, dst: Side, mode: str, key: list[str], cursor: str | None, crash_at: str | None
) -> subprocess.CompletedProcess[str]:
    spec: dict[str, Any] = {
        "source": src.table("orders"),
        "target": dst.table("landing"),
        "mode": mode,
        "key": key,
        "cursor": cursor,
        "connections": connections(src, dst),
        "run_id": "crashy",
        "generation": 1,
    }
    env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    return subprocess.run(
        [sys.executable, str(RUNNER), json.dumps(spec)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _resume(src: Side, dst: Side, mode: str, key: list[str], cursor: str | None) -> dict[str, Any]:
    """The re-run after the crash: same run id and generation, in this process."""
    result = run_transfer(
        process(src.table("orders"), dst.table("landing"), mode, key, cursor),
        context(connections(src, dst), run_id="crashy", generation=1),
    )
    assert result.status == "passed", result.errors
    return result.model_dump(mode="json")


def _committed_loads(dst: Side) -> list[tuple[Any, ...]]:
    if not dst.exists("_dpone_loads"):
        return []
    return dst.query(f"SELECT load_id, status FROM {dst.table('_dpone_loads')}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "key", "cursor"),
    [("append", [], None), ("incremental", ["order_id"], "updated_at")],
    ids=["append", "incremental"],
)
@pytest.mark.parametrize("crash_at", ["after_staging", "after_publish"])
def test_kill_9_then_resume_loads_exactly_once(
    pair: tuple[Side, Side], crash_at: str, mode: str, key: list[str], cursor: str | None
) -> None:
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 51))
    expected = rows(src, "orders", ORDER_COLUMNS)

    crashed = _spawn(src, dst, mode, key, cursor, crash_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr

    if crash_at == "after_staging":
        # The load transaction died with the process: no target, no ledger row, no staging.
        assert not dst.exists("landing")
        assert _committed_loads(dst) == []
    else:
        assert rows(dst, "landing", ORDER_COLUMNS) == expected
        assert [status for _, status in _committed_loads(dst)] == ["committed"]
    assert [t for t in dst.tables() if t.startswith("_dpone_stg_")] == []

    result = _resume(src, dst, mode, key, cursor)
    assert result["extracted_rows"] == result["inserted_rows"] == 50
    assert result["checkpoint"].get("already_committed", False) is (crash_at == "after_publish")

    assert rows(dst, "landing", ORDER_COLUMNS) == expected
    assert len(_committed_loads(dst)) == 1
    _no_leftovers(dst)


def _no_leftovers(dst: Side) -> None:
    assert [t for t in dst.tables() if t.startswith("_dpone_stg_")] == []
    if dst.path is not None:
        assert list(dst.path.parent.glob("*.dpone-stg-*")) == []


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["after_staging", "after_publish"])
def test_kill_9_into_an_existing_target_then_resume(pair: tuple[Side, Side], crash_at: str) -> None:
    """The second load of an incremental merge (staging in scratch/unlogged) crashes."""
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 31))
    first = run_transfer(
        process(
            src.table("orders"), dst.table("landing"), "incremental", ["order_id"], "updated_at"
        ),
        context(connections(src, dst), run_id="first"),
    )
    assert first.status == "passed", first.errors
    before = rows(dst, "landing", ORDER_COLUMNS)
    update_orders(src, [2, 4])
    seed_orders(src, range(31, 41), version=2)  # new rows carry newer cursors
    expected = rows(src, "orders", ORDER_COLUMNS)

    crashed = _spawn(src, dst, "incremental", ["order_id"], "updated_at", crash_at)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    landed = rows(dst, "landing", ORDER_COLUMNS)
    assert landed == (before if crash_at == "after_staging" else expected)

    result = _resume(src, dst, "incremental", ["order_id"], "updated_at")
    assert (result["inserted_rows"], result["updated_rows"]) == (10, 2)
    assert rows(dst, "landing", ORDER_COLUMNS) == expected
    assert len(_committed_loads(dst)) == 2
    _no_leftovers(dst)


def test_resume_in_process_reports_the_ledger_counts(pair: tuple[Side, Side]) -> None:
    src, dst = pair
    create_orders(src)
    seed_orders(src, range(1, 11))
    spec = process(src.table("orders"), dst.table("landing"), "append")
    conns = connections(src, dst)
    first = run_transfer(spec, context(conns, run_id="same"))
    seed_orders(src, range(11, 16))  # the source moves on; the committed load does not
    again = run_transfer(spec, context(conns, run_id="same"))
    assert again.status == "passed"
    assert again.load_id == first.load_id
    assert (again.extracted_rows, again.inserted_rows, again.final_rows) == (10, 10, 10)
    assert len(rows(dst, "landing")) == 10
