"""dpone against its reference peers (issue 13), each peer run from its throwaway venv.

Peers are never installed into the project (``bench/peers.py`` builds one venv per peer
under ``--peers-dir``; ``--install`` lets this bench build missing ones). Without a
peer's venv its rows print ``skipped: <why>``: that is how ``--quick`` (CI) runs.

1. **Orchestration alone** -- the per-run cost of the orchestrated run service with an
   executor that returns "passed" at once: ours (``dpone_core.run.OrchestratedRunService``)
   against the reference ``dpone==0.88.0`` (``dpone.orchestration.run.
   OrchestratedRunService``, the same constructor and ``run(output_dir=, request=)``).
   Each side runs in its own interpreter on a fresh temporary state/lock directory;
   workers alternate (ours, reference, ours, ...); one unmeasured warm-up run per worker;
   the median per run is printed with the ratio ours/reference.
2. **CLI** -- the reference's ``orchestrate run`` has no no-op equivalent (see the row);
   the closest whole-CLI figure is the cold start of ``orchestrate run --help``.
3. **Transfers** -- an ``append`` of N rows x 6 columns (bench/bench_transfer.py's
   ``orders``) from SQLite into a new SQLite table and into a new PostgreSQL table, each
   tool as a fresh process, end to end (start-up and imports included): ``dpone run``
   through our CLI, dlt, the Sling CLI, and on PostgreSQL ``psql \\copy`` from a CSV file
   and ``sqlite3 -csv | psql \\copy ... FROM pstdin``; on SQLite also the ``sqlite3`` CLI
   copying with ATTACH. Rounds interleave the tools; medians; ``ours/X`` is our time
   divided by X's (below 1.0 means dpone is faster).

    .venv/bin/python bench/bench_peers.py --install            # 200,000 rows, 3 rounds
    .venv/bin/python bench/bench_peers.py --rows 1000000       # once the venvs exist
    .venv/bin/python bench/bench_peers.py --quick              # CI smoke: small, installs nothing
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import bench_transfer  # noqa: E402  (the orders table and its generator)
from peers import DEFAULT_PEERS_DIR, PEERS, ensure_peer  # noqa: E402

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"

# --------------------------------------------------------------------------- orchestration

#: The loop both workers run; ``SETUP`` defines ``service(root)`` and ``request(root, i)``.
_LOOP = """
import json, sys, tempfile, time
from pathlib import Path
runs = int(sys.argv[1])
samples = []
with tempfile.TemporaryDirectory() as tmp:
    root = Path(tmp)
    svc = service(root)
    for i in range(runs + 1):  # run 0 warms up (lazy imports, first mkdir), not measured
        start = time.perf_counter()
        report = svc.run(request=request(root, i), output_dir=root / "out" / f"r{i}")
        samples.append((time.perf_counter() - start) * 1000)
        assert report.passed, report
print(json.dumps(samples[1:]))
"""

_OURS_SETUP = """
from dpone_core.executor.results import ProcessResult, RunResult
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.locks import LocalRunLockManager
from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService
from dpone_core.state import LocalJobStateStore

def instant(request):
    return RunResult(passed=True, run_id=str(request.run_id), process="noop",
                     result=ProcessResult(status="passed"))

def service(root):
    return OrchestratedRunService(
        lock_manager=LocalRunLockManager(root / "locks"),
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=instant,
        job_state_store=LocalJobStateStore(root / "state"),
    )

def request(root, i):
    return OrchestratedRunRequest(manifest_path=str(root / "noop.yml"), run_id=f"r{i}")
"""

_REFERENCE_SETUP = """
from dpone.contracts.process_types import ProcessResult
from dpone.orchestration.handoff import SchedulerHandoffBuilder
from dpone.orchestration.locks import LocalRunLockManager
from dpone.orchestration.run import OrchestratedRunRequest, OrchestratedRunService
from dpone.orchestration.state import LocalJobStateStore
from dpone.services.run_manifest import RunManifestResult

def instant(request):
    return RunManifestResult(
        manifest=str(request.manifest_path), process="noop", selector=request.selector,
        run_id=str(request.run_id), passed=True,
        result=ProcessResult(status="passed", inserted_rows=0, updated_rows=0, final_rows=0,
                             extracted_rows=0, duration_seconds=0.0, errors=[]),
    )

def service(root):
    return OrchestratedRunService(
        lock_manager=LocalRunLockManager(root / "locks"),
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=instant,
        job_state_store=LocalJobStateStore(root / "state"),
    )

def request(root, i):
    return OrchestratedRunRequest(manifest_path=str(root / "noop.yml"), run_id=f"r{i}")
"""


def _worker(python: str, setup: str, runs: int) -> list[float]:
    proc = subprocess.run(
        [python, "-c", setup + _LOOP, str(runs)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"orchestration worker failed:\n{proc.stderr[-3000:]}")
    samples: list[float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return samples


def _ratio(ours: float, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}x" if theirs else "-"


#: Ours with ``os.fsync`` a no-op: the reference never fsyncs (its state and lock files
#: are written and renamed only), so this row shows how much of the gap is durability.
_NO_FSYNC = "import os\nos.fsync = lambda fd: None\n"


def bench_orchestration(reference: str | None, note: str, rounds: int, runs: int) -> None:
    """Ours and the reference's service, alternating workers; medians per run."""
    ours: list[float] = []
    ours_unsynced: list[float] = []
    theirs: list[float] = []
    for _ in range(rounds):
        ours += _worker(sys.executable, _OURS_SETUP, runs)
        if reference:
            theirs += _worker(reference, _REFERENCE_SETUP, runs)
        ours_unsynced += _worker(sys.executable, _NO_FSYNC + _OURS_SETUP, runs)
    mine = statistics.median(ours)
    unsynced = statistics.median(ours_unsynced)
    ref = statistics.median(theirs) if theirs else None
    print(f"\n### orchestration alone ({rounds} x {runs} runs per side, median per run)\n")
    print("| what | reference dpone 0.88.0 | ours | ours/reference |")
    print("|---|---|---|---|")
    print(
        "| OrchestratedRunService.run, instant executor, local lock + job state + evidence | "
        f"{f'{ref:.2f} ms' if ref is not None else note} | {mine:.2f} ms | {_ratio(mine, ref)} |"
    )
    print(
        "| the same, ours with `os.fsync` a no-op (the reference never fsyncs) | "
        f"{f'{ref:.2f} ms' if ref is not None else note} | {unsynced:.2f} ms | "
        f"{_ratio(unsynced, ref)} |"
    )


def _wall_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - start) * 1000


def bench_cli(reference: str | None, note: str, runs: int) -> None:
    """Cold start of ``orchestrate run --help``, alternating; the no-op run is not possible."""
    ours: list[float] = []
    theirs: list[float] = []
    ref_cli = str(Path(reference).with_name("dpone")) if reference else None
    warm = 1 if runs > 1 else 0  # a first, unmeasured run warms the page cache
    for run in range(runs + warm):
        mine = _wall_ms([sys.executable, "-m", "dpone_core.cli", "orchestrate", "run", "--help"])
        ref_ms = _wall_ms([ref_cli, "orchestrate", "run", "--help"]) if ref_cli else None
        if run >= warm:
            ours.append(mine)
            if ref_ms is not None:
                theirs.append(ref_ms)
    mine = statistics.median(ours)
    ref = statistics.median(theirs) if theirs else None
    print(f"\n### whole CLI ({runs} runs per side, interleaved, median)\n")
    print("| what | reference dpone 0.88.0 | ours | ours/reference |")
    print("|---|---|---|---|")
    print(
        "| cold start `dpone orchestrate run --help` (ours: `python -m dpone_core.cli`) | "
        f"{f'{ref:.1f} ms' if ref is not None else note} | {mine:.1f} ms | {_ratio(mine, ref)} |"
    )
    print(
        "| no-op `orchestrate run` | skipped: the reference has no command process and no "
        "SQLite connector; its every orchestrated run is a database-to-database ETL run | - | - |"
    )


# --------------------------------------------------------------------------- transfers

_DLT_SCRIPT = """
import sys, dlt
from dlt.sources.sql_database import sql_database
src, kind, dst, dataset, pipelines_dir = sys.argv[1:]
source = sql_database(credentials=f"sqlite:///{src}", table_names=["orders"])
destination = (dlt.destinations.sqlalchemy(credentials=f"sqlite:///{dst}") if kind == "sqlite"
               else dlt.destinations.postgres(credentials=dst))
pipeline = dlt.pipeline(pipeline_name="bench", destination=destination, dataset_name=dataset,
                        pipelines_dir=pipelines_dir)
info = pipeline.run(source, write_disposition="append")
info.raise_on_failed_jobs()
"""
_MANIFEST = """version: 1
connections:
  shop: sqlite:///{source}
  warehouse: ${{BENCH_PEERS_TARGET}}
processes:
  orders:
    source: {{connection: shop, table: orders}}
    target: {{connection: warehouse, table: {table}}}
    strategy: {{mode: append}}
"""


def _run(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path | None = None) -> None:
    proc = subprocess.run(
        argv, cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, check=False
    )
    if proc.returncode != 0:
        out = (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
        raise RuntimeError(f"{Path(argv[0]).name} failed ({proc.returncode}):\n{out}")


def _pg(dsn: str, sql: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(sql.encode())
        return cur.fetchall() if cur.description else []


def _psql(dsn: str, *commands: str) -> list[str]:
    argv = ["/usr/bin/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn]
    for command in commands:
        argv += ["-c", command]
    return argv


class Transfer:
    """One load (SQLite into a new SQLite or PostgreSQL table) as each tool does it.

    Every tool writes into a place of its own (a directory, a schema) that ``reset``
    empties before each timed run and ``count`` checks after it (neither is timed).
    """

    def __init__(self, work: Path, source: Path, csv: Path, target: str, pg_dsn: str) -> None:
        self.work, self.source, self.csv, self.target, self.pg_dsn = (
            work,
            source,
            csv,
            target,
            pg_dsn,
        )
        self.work.mkdir(parents=True, exist_ok=True)

    @property
    def on_pg(self) -> bool:
        return self.target == "postgres"

    def place(self, tool: str) -> Path:
        return self.work / tool

    def table(self, tool: str) -> str:
        return f"bench_peers_{tool}.orders" if self.on_pg else "orders"

    def reset(self, tool: str) -> None:
        shutil.rmtree(self.place(tool), ignore_errors=True)
        self.place(tool).mkdir()
        if self.on_pg:
            _pg(self.pg_dsn, f"DROP SCHEMA IF EXISTS bench_peers_{tool} CASCADE")
            if tool != "dlt":  # dlt creates its dataset's schema itself
                _pg(self.pg_dsn, f"CREATE SCHEMA bench_peers_{tool}")

    def count(self, tool: str) -> int | None:
        if self.on_pg:
            return int(str(_pg(self.pg_dsn, f"SELECT count(*) FROM {self.table(tool)}")[0][0]))
        for path in sorted(self.place(tool).rglob("*.db")):
            with sqlite3.connect(path) as conn:
                tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
                if "orders" in tables:
                    return int(conn.execute("SELECT count(*) FROM orders").fetchone()[0])
        return None

    # -- the tools: each one timed call, a fresh process (or pipeline) ---------------
    def dpone(self, run: int) -> None:
        """``dpone run`` through our CLI (``python -m dpone_core.cli``), all fsyncs on."""
        manifest = self.place("dpone") / "bench.yml"
        manifest.write_text(_MANIFEST.format(source=self.source, table=self.table("dpone")))
        if self.on_pg:
            url = "postgresql+psycopg" + self.pg_dsn[len("postgresql") :]
        else:
            url = f"sqlite:///{self.place('dpone') / 'dst.db'}"
        _run(
            [sys.executable, "-m", "dpone_core.cli", "run", "--manifest", str(manifest),
             "--run-id", f"{self.target}_{run}", "--format", "json"],
            env={"BENCH_PEERS_TARGET": url},
            cwd=self.place("dpone"),
        )  # fmt: skip

    def dlt(self, python: str) -> None:
        """dlt's ``sql_database`` source (SQLAlchemy backend) into its sqlalchemy/postgres
        destination, ``write_disposition="append"``, a fresh pipelines dir."""
        dst = self.pg_dsn if self.on_pg else str(self.place("dlt") / "dst.db")
        dataset = "bench_peers_dlt" if self.on_pg else "main"
        _run(
            [python, "-c", _DLT_SCRIPT, str(self.source), self.target, dst, dataset,
             str(self.place("dlt") / "pipelines")],
            # dlt insists on a password; trust authentication ignores it (a DSN's own wins)
            env={"RUNTIME__DLTHUB_TELEMETRY": "false",
                 "DESTINATION__POSTGRES__CREDENTIALS__PASSWORD": "unused"},
            cwd=self.place("dlt"),
        )  # fmt: skip

    def sling(self, binary: str) -> None:
        """``sling run`` into a new table (``--mode full-refresh``: creates it, loads)."""
        if self.on_pg:
            target = self.pg_dsn + "?sslmode=disable"
        else:
            target = f"sqlite://{self.place('sling') / 'dst.db'}"
        _run(
            [binary, "run", "--src-conn", "BENCH_SRC", "--src-stream", "main.orders",
             "--tgt-conn", "BENCH_TGT", "--tgt-object",
             self.table("sling") if self.on_pg else "main.orders", "--mode", "full-refresh"],
            env={"BENCH_SRC": f"sqlite://{self.source}", "BENCH_TGT": target,
                 "SLING_HOME_DIR": str(self.place("sling")), "SLING_DISABLE_TELEMETRY": "true"},
        )  # fmt: skip

    def sqlite3_attach(self) -> None:
        """The floor on SQLite: the ``sqlite3`` CLI, ATTACH + CREATE TABLE AS SELECT."""
        sql = f"ATTACH '{self.source}' AS s; CREATE TABLE orders AS SELECT * FROM s.orders;"
        _run(["/usr/bin/sqlite3", str(self.place("sqlite3") / "dst.db"), sql])

    def _create(self, tool: str) -> str:
        return f"CREATE TABLE {self.table(tool)} ({bench_transfer.PG_TARGET_COLUMNS})"

    def psql_file(self) -> None:
        """The floor on PostgreSQL: ``psql \\copy`` of a CSV file exported beforehand."""
        copy = f"\\copy {self.table('psql')} FROM '{self.csv}' (FORMAT csv)"
        _run(_psql(self.pg_dsn, self._create("psql"), copy))

    def sqlite3_psql(self) -> None:
        """``sqlite3 -csv ... | psql -c "\\copy ... FROM pstdin (FORMAT csv)"``."""
        _run(_psql(self.pg_dsn, self._create("pipe")))
        export = subprocess.Popen(
            ["/usr/bin/sqlite3", "-csv", str(self.source),
             f"SELECT {bench_transfer.COLUMNS} FROM orders"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        copy = f"\\copy {self.table('pipe')} FROM pstdin (FORMAT csv)"
        load = subprocess.run(
            _psql(self.pg_dsn, copy), stdin=export.stdout, capture_output=True, check=False
        )
        if export.stdout is not None:
            export.stdout.close()
        if export.wait() != 0 or load.returncode != 0:
            raise RuntimeError(f"sqlite3 | psql failed: {load.stderr.decode()[-2000:]}")


Tool = tuple[str, str, Callable[[int], None] | None, str]  # name, place, timed call, skip note


def _tools(case: Transfer, peers: dict[str, tuple[str | None, str]]) -> list[Tool]:
    """The tools of one case; a tool that cannot run here has no call and says why."""
    dlt, dlt_note = peers["dlt"]
    sling, sling_note = peers["sling"]
    missing = [name for name in ("sqlite3", "psql") if not Path(f"/usr/bin/{name}").exists()]
    cli_note = f"skipped: {', '.join(missing)} not in /usr/bin" if missing else ""
    tools: list[Tool] = [
        ("dpone run (ours)", "dpone", case.dpone, ""),
        (f"dlt {PEERS['dlt'].pin.split('==')[1]}", "dlt",
         (lambda run: case.dlt(dlt)) if dlt else None, dlt_note),
        (f"sling {PEERS['sling'].pin.split('==')[1]}", "sling",
         (lambda run: case.sling(sling)) if sling else None, sling_note),
    ]  # fmt: skip
    if case.on_pg:
        tools += [
            ("psql \\copy from a CSV file", "psql",
             None if missing else lambda run: case.psql_file(), cli_note),
            ("sqlite3 -csv \\| psql \\copy FROM pstdin", "pipe",
             None if missing else lambda run: case.sqlite3_psql(), cli_note),
        ]  # fmt: skip
    else:
        tools.append(
            ("sqlite3 CLI: ATTACH + CREATE TABLE AS", "sqlite3",
             None if missing else lambda run: case.sqlite3_attach(), cli_note)
        )  # fmt: skip
    return tools


def bench_transfers(
    rows: int, rounds: int, pg_dsn: str, pg_missing: str | None,
    peers: dict[str, tuple[str | None, str]],
) -> None:  # fmt: skip
    """Every tool of every case once per round (interleaved), then medians side by side."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        source, csv = work / "src.db", work / "orders.csv"
        bench_transfer.build_source(source, rows)
        with sqlite3.connect(source) as conn, csv.open("w", newline="") as out:
            import csv as csvlib

            writer = csvlib.writer(out)
            writer.writerows(conn.execute(f"SELECT {bench_transfer.COLUMNS} FROM orders"))
        cases = [Transfer(work / "sqlite", source, csv, "sqlite", pg_dsn)]
        if not pg_missing:
            cases.append(Transfer(work / "postgres", source, csv, "postgres", pg_dsn))
        plans = {case.target: _tools(case, peers) for case in cases}
        times: dict[tuple[str, str], list[float]] = {}
        for run in range(rounds):
            for case in cases:
                for name, place, call, _ in plans[case.target]:
                    if call is None:
                        continue
                    case.reset(place)
                    start = time.perf_counter()
                    call(run)
                    times.setdefault((case.target, name), []).append(time.perf_counter() - start)
                    loaded = case.count(place)
                    if loaded != rows:
                        raise RuntimeError(f"{name} into {case.target}: {loaded} rows, not {rows}")
                    case.reset(place)  # free the disk before the next tool
            print(f"transfers: round {run + 1}/{rounds} done", flush=True)
        if not pg_missing:
            for case in cases:
                if case.on_pg:
                    for _, place, _, _ in plans[case.target]:
                        _pg(pg_dsn, f"DROP SCHEMA IF EXISTS bench_peers_{place} CASCADE")

    print(
        f"\n### transfers: append of {rows:,} rows x 6 columns into a new table "
        f"(fresh process per run, end to end, median of {rounds} interleaved rounds)\n"
    )
    print("| load | tool | median s | ours/tool |")
    print("|---|---|---|---|")
    for target in ("sqlite", "postgres"):
        label = f"sqlite->{target}"
        if target not in plans:
            print(f"| {label} | all tools | skipped: {pg_missing} | - |")
            continue
        ours = statistics.median(times[(target, "dpone run (ours)")])
        for name, _, call, note in plans[target]:
            if call is None:
                print(f"| {label} | {name} | {note} | - |")
                continue
            median = statistics.median(times[(target, name)])
            print(f"| {label} | {name} | {median:.3f} | {ours / median:.2f}x |")


# --------------------------------------------------------------------------- main


def _pg_missing(dsn: str) -> str | None:
    """None when PostgreSQL answers on ``dsn``, else why not."""
    try:
        _pg(dsn, "SELECT 1")
    except Exception as exc:
        return f"PostgreSQL not reachable at {dsn} ({type(exc).__name__})"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000, help="rows per transfer")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved transfer rounds")
    parser.add_argument("--orch-rounds", type=int, default=5, help="worker pairs (orchestration)")
    parser.add_argument("--orch-runs", type=int, default=20, help="runs per worker")
    parser.add_argument("--cli-runs", type=int, default=10, help="cold starts per side")
    parser.add_argument("--quick", action="store_true", help="2,000 rows, few runs (CI smoke)")
    parser.add_argument("--install", action="store_true", help="build missing peer venvs")
    parser.add_argument("--peers-dir", type=Path, default=DEFAULT_PEERS_DIR)
    parser.add_argument("--pg-dsn", default=os.environ.get("DPONE_TEST_PG_DSN", DEFAULT_PG))
    args = parser.parse_args()
    args.pg_dsn = args.pg_dsn.replace("postgresql+psycopg://", "postgresql://", 1)  # libpq form
    if args.quick:
        args.rows, args.rounds, args.orch_rounds, args.orch_runs, args.cli_runs = 2000, 1, 1, 3, 1
        args.install = False  # --quick never installs: building a venv takes minutes

    peers = {
        name: ensure_peer(name, args.peers_dir, install=args.install)
        for name in ("dpone", "dlt", "sling")  # dagster-sling: bench_dagster_defs.py's peer
    }
    for name, (_, note) in peers.items():
        print(f"peer {name}: {note}", flush=True)
    reference, reference_note = peers["dpone"]
    bench_orchestration(reference, reference_note, args.orch_rounds, args.orch_runs)
    bench_cli(reference, reference_note, args.cli_runs)
    bench_transfers(args.rows, args.rounds, args.pg_dsn, _pg_missing(args.pg_dsn), peers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
