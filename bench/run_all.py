"""Every benchmark in one command (issue 13), each printed side by side with its baseline.

    .venv/bin/python bench/run_all.py            # the sizes docs/performance.md reports
    .venv/bin/python bench/run_all.py --quick    # small sizes, seconds: CI's smoke run
    .venv/bin/python bench/run_all.py --peers    # also build the reference peers' venvs

Each bench runs in its own interpreter, one after the other; a bench that fails makes the
exit code 1 (after the others ran). A row that cannot run here says so in the output and
why (no PostgreSQL on ``--pg-dsn``; a reference peer not installed): a bench row, not an
error.

Reference peers (``dagster-sling`` for the Dagster definitions; the reference ``dpone``,
``dlt`` and ``sling`` in bench/bench_peers.py) are never installed into the project:
with ``--peers`` bench/peers.py creates one throwaway virtualenv per peer under
``--peers-dir`` and installs the pinned peer there. ``--quick`` never installs one (that
takes minutes): it uses a peer venv only if one already exists, else skips those rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from peers import ensure_peer  # noqa: E402  (bench/peers.py: the throwaway peer venvs)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def _pg_reachable(dsn: str) -> str | None:
    """None when PostgreSQL answers on ``dsn``, else why not."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed"
    try:
        with psycopg.connect(dsn, connect_timeout=3) as conn:
            conn.execute("select 1")
    except Exception as exc:
        return f"PostgreSQL not reachable at {dsn} ({type(exc).__name__})"
    return None


def _plan(args: argparse.Namespace) -> list[tuple[str, list[str] | None, str]]:
    """(title, argv or None when skipped, note) per bench."""
    quick = args.quick
    pg_missing = _pg_reachable(args.pg_dsn)
    install = args.peers and not quick
    sling, sling_note = ensure_peer("dagster-sling", Path(args.peers_dir), install=install)
    py = sys.executable
    plan: list[tuple[str, list[str] | None, str]] = [
        (
            "CLI end to end: import budget, fsyncs per run",
            [py, str(BENCH / "bench_cli.py"), "--runs", "3" if quick else "15"],
            "",
        ),
        (
            "orchestration",
            [py, str(BENCH / "bench_orchestration.py"), "--runs", "2" if quick else "30"]
            + (["--lock-seconds", "0.2"] if quick else []),
            "",
        ),
        (
            "backends: local files vs PostgreSQL",
            None
            if pg_missing
            else [py, str(BENCH / "bench_backends.py"), "--dsn", args.pg_dsn]
            + (["--seconds", "0.2", "--runs", "3"] if quick else []),
            f"skipped: {pg_missing}" if pg_missing else "",
        ),
        (
            "transfers",
            [py, str(BENCH / "bench_transfer.py"), "--pg-dsn", args.pg_dsn]
            + (["--rows", "2000", "--repeat", "1"] if quick else ["--repeat", "2"])
            + (["--skip-pg"] if pg_missing else []),
            f"PostgreSQL rows skipped: {pg_missing}" if pg_missing else "",
        ),
        (
            "Dagster definitions vs dagster-sling",
            [py, str(BENCH / "bench_dagster_defs.py")]
            + (["--quick", "--runs", "1", "--shapes", "many"] if quick else ["--runs", "5"])
            + (["--sling-python", sling] if sling else ["--dpone-only"]),
            f"peer {sling_note}",
        ),
        (
            "reference peers: dpone 0.88.0, dlt, sling",
            [py, str(BENCH / "bench_peers.py"), "--peers-dir", args.peers_dir]
            + ["--pg-dsn", args.pg_dsn]
            + (["--quick"] if quick else [])
            + (["--install"] if install else []),
            "",
        ),
    ]
    return plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (seconds), for CI")
    parser.add_argument("--peers", action="store_true", help="install reference peers (venvs)")
    parser.add_argument("--peers-dir", default="/tmp/dpone-bench-peers")
    parser.add_argument("--pg-dsn", default=os.environ.get("DPONE_TEST_PG_DSN", DEFAULT_PG))
    args = parser.parse_args()
    failed: list[str] = []
    for title, argv, note in _plan(args):
        print(f"\n=== {title}{' (--quick)' if args.quick else ''}", flush=True)
        if note:
            print(f"note: {note}", flush=True)
        if argv is None:
            continue
        start = time.perf_counter()
        code = subprocess.run(argv, cwd=BENCH.parent, check=False).returncode
        print(f"--- {title}: exit {code}, {time.perf_counter() - start:.1f} s", flush=True)
        if code != 0:
            failed.append(title)
    if failed:
        print(f"\nFAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nall benchmarks ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
