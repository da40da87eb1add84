"""What a cron user pays per run (issue 13): a whole no-op ``dpone orchestrate run``.

1. Wall time of a fresh ``python -m dpone_core.cli orchestrate run`` of a ``command``
   process (``/bin/true``) and of a small SQLite -> SQLite transfer, interleaved with
   ``python -c pass`` (medians; the difference is dpone's own cost, start-up included).
2. The system calls that make a run durable, counted exactly with
   ``strace -f -c -e trace=fsync,fdatasync,sync_file_range,syncfs`` over one run of each
   (a row says so when strace is missing).
3. How many modules the run imports (docs/performance.md, "Import budget").

Usage: .venv/bin/python bench/bench_cli.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMAND_MANIFEST = """version: 1
connections: {}
processes:
  job:
    kind: command
    command: ["/bin/true"]
"""
TRANSFER_MANIFEST = """version: 1
connections: {shop: "sqlite:///shop.db", warehouse: "sqlite:///warehouse.db"}
processes:
  orders:
    source: {connection: shop, table: orders}
    target: {connection: warehouse, table: landing_orders}
"""
#: dpone reuses a manifest's parse only once the file is this old (dpone_core.file_cache).
SETTLED_SECONDS = 2.1
SYNC_CALLS = "fsync,fdatasync,sync_file_range,syncfs,msync"
_MODULES_CHILD = (
    "import sys, json\nfrom dpone_core.cli import main\ncode = main(sys.argv[1:])\n"
    "print('\\nDPONE-MODULES ' + json.dumps(sorted(sys.modules)))\n"
)


def _workspace(root: Path) -> None:
    (root / "command.yml").write_text(COMMAND_MANIFEST)
    (root / "transfer.yml").write_text(TRANSFER_MANIFEST)
    with sqlite3.connect(root / "shop.db") as db:
        db.execute("create table orders (order_id integer primary key, amount integer)")
        db.executemany("insert into orders values (?, ?)", [(i, i) for i in range(1000)])


def _argv(manifest: str, run_id: str) -> list[str]:
    return [
        sys.executable, "-m", "dpone_core.cli", "orchestrate", "run", "--format", "json",
        "--manifest", manifest, "--run-id", run_id,
    ]  # fmt: skip


def _timed(argv: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise SystemExit(f"{argv} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    return elapsed


#: The staircase under a no-op run: each step adds what one layer of it costs, so the
#: table says how much of the difference is Python, pydantic, PyYAML, dpone's modules and
#: models, and the run itself (docs/performance.md, "A whole run through the CLI").
FLOOR_STEPS = (
    ("python -c pass", "pass"),
    ("+ import pydantic", "import pydantic"),
    (
        "+ the first pydantic model (plugin discovery, schema machinery)",
        "from pydantic import BaseModel\nclass A(BaseModel):\n    x: int\nA(x=1)",
    ),
    (
        "+ import yaml, fasteners",
        "import pydantic, yaml, fasteners\nclass A(pydantic.BaseModel):\n    x: int\n",
    ),
    (
        "+ every dpone module a no-op run imports (models built)",
        "import dpone_core.cli, dpone_core.run, dpone_core.executor.service, "
        "dpone_core.backends.file_locks, dpone_core.backends.file_state",
    ),
)


def bench_floor(root: Path, runs: int) -> list[tuple[str, float]]:
    """Medians of each step of FLOOR_STEPS and of the whole run, interleaved."""
    samples: dict[str, list[float]] = {label: [] for label, _ in FLOOR_STEPS}
    samples["+ the run itself (lock, state, supervisor, command, evidence)"] = []
    for i in range(runs):
        for label, code in FLOOR_STEPS:
            samples[label].append(_timed([sys.executable, "-c", code], root))
        samples["+ the run itself (lock, state, supervisor, command, evidence)"].append(
            _timed(_argv("command.yml", f"f{i}"), root)
        )
    return [(label, statistics.median(values)) for label, values in samples.items()]


def bench_wall(root: Path, runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {"pass": [], "command": [], "transfer": []}
    for i in range(runs):  # interleaved: a slow moment hits every column alike
        samples["pass"].append(_timed([sys.executable, "-c", "pass"], root))
        samples["command"].append(_timed(_argv("command.yml", f"c{i}"), root))
        samples["transfer"].append(_timed(_argv("transfer.yml", f"t{i}"), root))
    return {name: statistics.median(values) for name, values in samples.items()}


def count_syncs(root: Path, manifest: str, run_id: str) -> dict[str, int] | None:
    """Exact counts of the sync system calls of one run, all processes; None without strace."""
    strace = shutil.which("strace")
    if strace is None:
        return None
    out = root / f"{run_id}.strace"
    argv = [
        strace,
        "-f",
        "-c",
        "-o",
        str(out),
        "-e",
        f"trace={SYNC_CALLS}",
        *_argv(manifest, run_id),
    ]
    proc = subprocess.run(argv, cwd=root, capture_output=True, check=False)
    if proc.returncode != 0 or not out.exists():
        return None  # e.g. ptrace not permitted in this container
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        match = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)$", line)
        if match and match.group(2) != "total":
            counts[match.group(2)] = int(match.group(1))
    return counts


def count_modules(root: Path, manifest: str, run_id: str) -> tuple[int, list[str]]:
    argv = [sys.executable, "-c", _MODULES_CHILD, *_argv(manifest, run_id)[3:]]
    proc = subprocess.run(argv, cwd=root, capture_output=True, text=True, check=True)
    modules = json.loads(proc.stdout.rsplit("DPONE-MODULES ", 1)[1])
    heavy = sorted(
        {m.split(".")[0] for m in modules}
        & {"sqlalchemy", "psycopg", "psycopg2", "dagster", "openlineage", "pydantic", "yaml"}
    )
    return len(modules), heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    # What an installed dpone has: bytecode for every module (bootstrap.sh compiles the
    # editable tree; PYTHONDONTWRITEBYTECODE would otherwise recompile it on every run).
    package = Path(__file__).resolve().parent.parent / "dpone_core"
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _workspace(root)
        time.sleep(SETTLED_SECONDS)  # a scheduled manifest was written long before its run
        wall = bench_wall(root, args.runs)
        floor = bench_floor(root, args.runs)
        syncs = {
            name: count_syncs(root, f"{name}.yml", f"s-{name}") for name in ("command", "transfer")
        }
        modules = {
            name: count_modules(root, f"{name}.yml", f"m-{name}")
            for name in ("command", "transfer")
        }
    base = wall["pass"]
    print(f"dpone CLI end to end, median of {args.runs} interleaved runs")
    print("| case | `python -c pass` | dpone | ratio | difference | goal |")
    print("|---|---|---|---|---|---|")
    for name, label in (("command", "no-op `command` run"), ("transfer", "sqlite->sqlite 1k rows")):
        ms = wall[name]
        goal = "<= +100 ms: " + ("met" if ms - base <= 100 else "**not met**")
        print(
            f"| `orchestrate run`, {label} | {base:.1f} ms | {ms:.1f} ms | {ms / base:.2f}x | "
            f"+{ms - base:.1f} ms | {goal if name == 'command' else '-'} |"
        )
    print()
    print("Where a no-op run's time goes (each line adds one layer; medians, interleaved)")
    print("| step | cumulative | this step |")
    print("|---|---|---|")
    previous = 0.0
    for label, ms in floor:
        print(f"| {label} | {ms:.1f} ms | +{ms - previous:.1f} ms |")
        previous = ms
    print()
    print(
        "| case | sync calls per run (strace -f -c, all processes) | modules imported "
        "| heavy packages |"
    )
    print("|---|---|---|---|")
    for name in ("command", "transfer"):
        counted = syncs[name]
        text = (
            ", ".join(f"{call} {n}" for call, n in sorted(counted.items())) or "none"
            if counted is not None
            else "skipped: strace not installed or not permitted"
        )
        total, heavy = modules[name]
        print(f"| {name} | {text} | {total} | {', '.join(heavy)} |")


if __name__ == "__main__":
    main()
