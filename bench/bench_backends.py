"""Orchestration backends side by side: local files against PostgreSQL (issue 5).

1. Lock acquire + release per second, one process, one key. The PostgreSQL
   cycle opens a dedicated session per lock (by design: a pooled session
   would re-take its own advisory lock), so it measures connection set-up too.
2. Full orchestrated no-op runs per second (``OrchestratedRunService`` with a
   ``true`` command): lock, state admission, run, state commit, evidence,
   release. Evidence files are local in both cases.

Both backends run in the same process, one after the other, and are printed
side by side with the ratio PostgreSQL / files. The PostgreSQL side uses a
throw-away schema that is dropped afterwards.

Usage: .venv/bin/python bench/bench_backends.py [--seconds S] [--runs N] [--dsn DSN]
(DSN default: DPONE_TEST_PG_DSN, else postgresql://postgres@127.0.0.1:5432/test)
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_locks import PostgresRunLockManager
from dpone_core.backends.postgres_state import PostgresJobStateStore
from dpone_core.executor import RunManifestService
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.locks import LocalRunLockManager, LockManager
from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService
from dpone_core.state import JobStateStore, LocalJobStateStore

DEFAULT_DSN = os.environ.get("DPONE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


def lock_cycles_per_second(manager: LockManager, seconds: float) -> float:
    n, deadline = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < deadline:
        acquisition = manager.acquire("bench", run_id="bench")
        assert acquisition.lock is not None, acquisition.message
        acquisition.lock.release()
        n += 1
    return n / (time.perf_counter() - started)


def runs_per_second(
    locks: LockManager, store: JobStateStore, root: Path, label: str, runs: int
) -> tuple[float, float]:
    """(runs per second, median ms per run) for ``runs`` distinct no-op run ids."""
    manifest = root / "noop.yml"
    manifest.write_text('version: 1\nprocesses:\n  noop: {kind: command, command: ["true"]}\n')
    service = OrchestratedRunService(
        lock_manager=locks,
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=RunManifestService(progress=io.StringIO()).execute,
        job_state_store=store,
    )
    samples = []
    started = time.perf_counter()
    for i in range(runs):
        t0 = time.perf_counter()
        report = service.run(
            request=OrchestratedRunRequest(manifest_path=str(manifest), run_id=f"{label}{i}"),
            output_dir=root / "out" / f"{label}{i}",
        )
        samples.append((time.perf_counter() - t0) * 1000)
        assert report.passed, report.blockers
    return runs / (time.perf_counter() - started), statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per lock benchmark")
    parser.add_argument("--runs", type=int, default=100, help="orchestrated runs per backend")
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    args = parser.parse_args()

    schema = f"dpone_bench_{os.getpid()}"
    target = PostgresTarget(args.dsn, schema)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            files_locks = LocalRunLockManager(root / "locks")
            pg_locks = PostgresRunLockManager(target, on_lost=None)
            pg_store = PostgresJobStateStore(target)
            pg_locks.inspect()  # creates the tables outside the timed loops

            lock_files = lock_cycles_per_second(files_locks, args.seconds)
            lock_pg = lock_cycles_per_second(pg_locks, args.seconds)
            run_files, ms_files = runs_per_second(
                files_locks, LocalJobStateStore(root / "state"), root, "f", args.runs
            )
            run_pg, ms_pg = runs_per_second(pg_locks, pg_store, root, "p", args.runs)
            pg_store.close()
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))

    server = target.describe()
    print(
        f"dpone orchestration backends: python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, PostgreSQL at {server}"
    )
    print()
    print("| benchmark | local files | PostgreSQL | ratio (PostgreSQL / files) |")
    print("|---|---|---|---|")
    print(
        f"| lock acquire + release per second (one process, one key) | {lock_files:,.0f}/s "
        f"({1000 / lock_files:.2f} ms) | {lock_pg:,.0f}/s ({1000 / lock_pg:.2f} ms) | "
        f"{lock_pg / lock_files:.2f}x |"
    )
    print(
        f"| orchestrated no-op runs per second ({args.runs} runs, median ms per run) | "
        f"{run_files:,.1f}/s ({ms_files:.1f} ms) | {run_pg:,.1f}/s ({ms_pg:.1f} ms) | "
        f"{run_pg / run_files:.2f}x |"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
