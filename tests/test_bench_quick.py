"""`bench/run_all.py --quick` runs every benchmark on small sizes, so no bench ever rots.

Not a timing test: only that each bench runs to the end and prints its side-by-side table.
A row that cannot run here (a reference peer not installed) is a row in the bench's output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_bench_runs_quick() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run_all.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = proc.stdout
    for title in (
        "CLI end to end",
        "orchestration",
        "backends: local files vs PostgreSQL",
        "transfers",
        "Dagster definitions vs dagster-sling",
        "reference peers: dpone 0.88.0, dlt, sling",
    ):
        assert f"=== {title}" in out, out
    assert out.count(": exit 0,") == 6, out  # every bench ran (PostgreSQL is there in CI)
    assert "| `orchestrate run`, no-op `command` run |" in out
    assert "sqlite->sqlite append" in out and "peak RSS" in out
    # bench/bench_peers.py: our rows always run; a peer's rows run or say "skipped: <why>".
    assert "| OrchestratedRunService.run, instant executor" in out
    assert "| sqlite->sqlite | dpone run (ours) |" in out
    assert "| sqlite->postgres | dpone run (ours) |" in out
    assert "creating the throwaway peer venv" not in out  # --quick never installs a peer
    assert out.rstrip().endswith("all benchmarks ran")
