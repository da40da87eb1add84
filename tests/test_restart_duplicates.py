"""`restart` never silently appends a load twice (issue 9, item 4).

A crash after the publish commit leaves the rows in the target and the job
state `running`. `resume` finds the load in the ledger and publishes nothing
again; `restart` (a new generation, a new load id) would append every row a
second time, so it is refused with `job_state.restart_would_duplicate` unless
the operator opts in with `--allow-duplicate-load`. Modes that converge
(merge, replace) restart as before: tests/test_cli_transfer.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.support import Workspace


def _seed(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("create table orders (order_id integer primary key, amount integer)")
        db.executemany("insert into orders values (?, ?)", [(i, i) for i in range(1, rows + 1)])


def _landed(ws: Workspace) -> int:
    with sqlite3.connect(ws.root / "warehouse.db") as db:
        return int(db.execute("select count(*) from landing_orders").fetchone()[0])


@pytest.fixture
def append_manifest(ws: Workspace) -> Path:
    _seed(ws.root / "shop.db", 300)
    return ws.write_manifest(
        {
            "orders": {
                "source": {"connection": "shop", "table": "orders"},
                "target": {"connection": "warehouse", "table": "landing_orders"},
                "strategy": {"mode": "append"},
            }
        },
        connections={"shop": "sqlite:///shop.db", "warehouse": "sqlite:///warehouse.db"},
    )


def test_restart_after_a_crash_past_publish_is_refused_and_resume_is_safe(
    ws: Workspace, append_manifest: Path
) -> None:
    args = ("--manifest", str(append_manifest), "--run-id", "r1")
    code, _, err = ws.orchestrate(*args, env={"DPONE_TEST_CRASH_AT": "after_publish"})
    assert code == -9, err
    assert _landed(ws) == 300

    code, report, _ = ws.orchestrate(*args, "--resume-policy", "restart")
    assert code == 1
    assert report["blockers"] == ["job_state.restart_would_duplicate"], report["blocker_details"]
    assert "append them again" in report["blocker_details"][0]["message"]
    assert "--resume-policy resume" in report["blocker_details"][0]["action"]
    assert _landed(ws) == 300
    assert ws.state("r1")["status"] == "running"  # a refusal never rewrites the state

    code, report, err = ws.orchestrate(*args, "--resume-policy", "resume")
    assert code == 0, err
    assert _landed(ws) == 300  # the published load was recognised, not repeated


def test_a_deliberate_repeat_needs_the_explicit_opt_in(
    ws: Workspace, append_manifest: Path
) -> None:
    args = ("--manifest", str(append_manifest), "--run-id", "r1")
    assert ws.orchestrate(*args)[0] == 0
    code, report, _ = ws.orchestrate(*args, "--resume-policy", "restart")
    assert code == 1 and report["blockers"] == ["job_state.restart_would_duplicate"]
    assert _landed(ws) == 300

    code, report, err = ws.orchestrate(
        *args, "--resume-policy", "restart", "--allow-duplicate-load"
    )
    assert code == 0, err
    assert _landed(ws) == 600
    assert ws.state("r1")["generation"] == 2
    # The opt-in is a one-off: it never reaches the scheduler snippets.
    assert "--allow-duplicate-load" not in report["scheduler_handoff"]["cron_command"]
