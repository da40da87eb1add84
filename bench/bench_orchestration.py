"""Orchestration benchmarks (issue 2), each printed side by side with its baseline.

1. Cold start of ``dpone orchestrate run --help`` against ``python -c pass``.
2. Overhead of an orchestrated no-op command against the same command run
   directly through ``RunManifestService`` in process (all durable fsyncs on),
   interleaved; and the orchestration alone, with an executor that returns at
   once (no process spawn to add noise).
3. Lock acquire/release per second in one process, against a bare
   ``fasteners.InterProcessLock`` acquire/release on one file.

Usage: .venv/bin/python bench/bench_orchestration.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import fasteners

from dpone_core.executor import RunManifestService
from dpone_core.executor.request import RunRequest
from dpone_core.executor.results import ProcessResult, RunResult
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.locks import LocalRunLockManager
from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService, RunExecutor
from dpone_core.state import LocalJobStateStore


def _median_ms(argv: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def bench_cold_start(runs: int) -> tuple[float, float]:
    dpone = str(Path(sys.executable).with_name("dpone"))
    base = _median_ms([sys.executable, "-c", "pass"], runs)
    help_ms = _median_ms([dpone, "orchestrate", "run", "--help"], runs)
    return base, help_ms


def _service(root: Path, executor: RunExecutor) -> OrchestratedRunService:
    return OrchestratedRunService(
        lock_manager=LocalRunLockManager(root / "locks"),
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=executor,
        job_state_store=LocalJobStateStore(root / "state"),
    )


def bench_overhead(runs: int, root: Path) -> tuple[float, float]:
    """Direct and orchestrated runs of one no-op command, interleaved so that noise
    (process spawning dominates both) hits both sides alike."""
    manifest = root / "noop.yml"
    manifest.write_text('version: 1\nprocesses:\n  noop: {kind: command, command: ["true"]}\n')
    executor = RunManifestService().execute
    service = _service(root, executor)
    direct, orchestrated = [], []
    for i in range(runs):
        start = time.perf_counter()
        executor(RunRequest(manifest_path=str(manifest), run_id=f"d{i}"))
        direct.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        report = service.run(
            request=OrchestratedRunRequest(manifest_path=str(manifest), run_id=f"o{i}"),
            output_dir=root / "out" / f"o{i}",
        )
        orchestrated.append((time.perf_counter() - start) * 1000)
        assert report.passed, report.blockers
    return statistics.median(direct), statistics.median(orchestrated)


def bench_orchestration_only(runs: int, root: Path) -> tuple[float, float]:
    """The orchestration alone: an executor that returns a passed result at once,
    called directly and through the service (lock, state, evidence, all fsyncs)."""
    manifest = root / "noop.yml"

    def instant(request: RunRequest) -> RunResult:
        return RunResult(
            passed=True,
            run_id=str(request.run_id),
            process="noop",
            result=ProcessResult(status="passed"),
        )

    service = _service(root / "only", instant)
    direct, orchestrated = [], []
    for i in range(runs):
        start = time.perf_counter()
        instant(RunRequest(manifest_path=str(manifest), run_id=f"d{i}"))
        direct.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        service.run(
            request=OrchestratedRunRequest(manifest_path=str(manifest), run_id=f"i{i}"),
            output_dir=root / "only" / "out" / f"i{i}",
        )
        orchestrated.append((time.perf_counter() - start) * 1000)
    return statistics.median(direct), statistics.median(orchestrated)


def bench_locks(seconds: float, root: Path) -> tuple[float, float]:
    bare = fasteners.InterProcessLock(str(root / "bare.lock"))
    n, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        bare.acquire(blocking=False)
        bare.release()
        n += 1
    bare_rate = n / seconds
    manager = LocalRunLockManager(root / "locks-bench")
    n, deadline = 0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        acquisition = manager.acquire("bench", run_id="bench")
        assert acquisition.lock is not None
        acquisition.lock.release()
        n += 1
    return bare_rate, n / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--lock-seconds", type=float, default=2.0, help="lock benchmark length")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base, help_ms = bench_cold_start(args.runs)
        direct, orchestrated = bench_overhead(args.runs, root)
        instant_direct, instant_orchestrated = bench_orchestration_only(args.runs * 3, root)
        bare_rate, lock_rate = bench_locks(args.lock_seconds, root)
    print("| benchmark | baseline | dpone | ratio | difference |")
    print("|---|---|---|---|---|")
    print(
        f"| cold start `dpone orchestrate run --help` vs `python -c pass` | {base:.1f} ms | "
        f"{help_ms:.1f} ms | {help_ms / base:.2f}x | +{help_ms - base:.1f} ms |"
    )
    print(
        f"| no-op command: orchestrated vs direct (in process, median) | {direct:.2f} ms | "
        f"{orchestrated:.2f} ms | {orchestrated / direct:.2f}x | "
        f"+{orchestrated - direct:.2f} ms per run |"
    )
    print(
        f"| orchestration alone: instant executor via the service vs called directly | "
        f"{instant_direct:.3f} ms | {instant_orchestrated:.2f} ms | - | "
        f"+{instant_orchestrated - instant_direct:.2f} ms per run |"
    )
    print(
        f"| lock acquire+release per second (one process) vs bare fasteners lock | "
        f"{bare_rate:,.0f}/s | {lock_rate:,.0f}/s | {lock_rate / bare_rate:.2f}x | "
        f"{1000 / lock_rate - 1000 / bare_rate:+.3f} ms per cycle |"
    )


if __name__ == "__main__":
    main()
