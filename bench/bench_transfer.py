"""Transfer engine benchmarks, measured side by side in one run.

    .venv/bin/python bench/bench_transfer.py                # 1,000,000 rows, median of 3
    .venv/bin/python bench/bench_transfer.py --rows 100000 --repeat 1

Cases (every timing is wall-clock around the whole call, connection included):

* sqlite -> sqlite ``append``: a plain Python ``fetchmany``/``executemany`` loop and
  SQLite's own ``ATTACH`` + ``INSERT ... SELECT`` (the peers), against
  ``run_transfer`` through the general row path and through the SQLite fast path,
  each into a new target (created by the load) and into an existing empty one.
* sqlite -> sqlite ``merge``: N rows upserted into an N-row target (unique key) of
  which 10 % changed: the plain loop runs ``executemany`` of an upsert, ATTACH runs
  ``INSERT ... SELECT ... ON CONFLICT DO UPDATE``.
* sqlite -> PostgreSQL ``append``: psycopg ``executemany`` into an existing table
  against ``run_transfer`` (COPY into staging), new and existing target.
* sqlite -> PostgreSQL ``append`` against the shell pipe ``sqlite3 -csv <db> 'SELECT
  ...' | psql -c "\\copy t FROM STDIN (FORMAT csv)"`` into an existing table (the
  CLIs at /usr/bin or on PATH; the row says "skipped" and why when one is missing).
* ``merge`` (10 % changed) against its hand-written limit on both dialects: SQLite
  ``ATTACH`` + a TEMP stage table + ``INSERT ... SELECT ... ON CONFLICT (key) DO
  UPDATE ... WHERE <changed>``; PostgreSQL the ``sqlite3 -csv | psql`` pipe into a
  TEMP stage table + the same ``INSERT ... ON CONFLICT ... WHERE <changed>``, in one
  transaction.
* Peak RSS of ``run_transfer`` in a fresh subprocess for N/10 and N rows
  (general path sqlite -> sqlite, COPY path sqlite -> PostgreSQL): bounded memory
  means the two are close.

Ratios: ``speed vs X`` is X's time divided by ours (> 1 means faster than X).
Goals (issue 3): general ``append`` >= 0.9x the plain loop; the SQLite fast path
within 2x of SQLite's own copy (speed >= 0.5x); COPY >= 3x ``executemany``; peak
RSS at N within 1.5x of N/10. Issue 13: sqlite -> PostgreSQL ``append`` >= 0.8x the
speed of the ``sqlite3 | psql`` pipe; ``merge`` on both dialects <= 1.25x the time
of the hand-written limit.

The machine this runs on is shared, so every case is repeated (``--repeat``) and the
median is reported, interleaved across cases. ``--groups`` runs only the groups whose
name contains one of its words (``--groups postgres,merge``); ``--no-rss`` skips the
RSS section.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
BATCH = 10_000
SOURCE_DDL = (
    "CREATE TABLE orders (order_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL, "
    "amount NUMERIC(12,2), status TEXT, note TEXT, updated_at TIMESTAMP)"
)
# What the engine creates from that source (declared types copied, no constraints).
TARGET_COLUMNS = (
    "order_id INTEGER, customer_id INTEGER, amount NUMERIC(12,2), status TEXT, note TEXT, "
    "updated_at TIMESTAMP"
)
PG_TARGET_COLUMNS = (
    "order_id bigint, customer_id bigint, amount numeric(12,2), status text, note text, "
    "updated_at timestamp"
)
COLUMNS = "order_id, customer_id, amount, status, note, updated_at"


def make_row(i: int, version: int = 1) -> tuple[Any, ...]:
    return (
        i,
        i % 1000,
        round(i * 0.37 + version, 2),
        ("new", "paid", "shipped")[(i + version) % 3],
        f"note {i}",
        f"2024-{version:02d}-{1 + i % 28:02d} 10:{i % 60:02d}:00",
    )


def build_source(path: Path, rows: int, *, changed_every: int = 0) -> None:
    """The orders table; with ``changed_every``, every n-th row is a newer version."""
    conn = sqlite3.connect(path)
    conn.execute(SOURCE_DDL)

    def generate() -> Any:
        for i in range(1, rows + 1):
            version = 2 if changed_every and i % changed_every == 0 else 1
            yield make_row(i, version)

    conn.executemany(f"INSERT INTO orders ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", generate())
    conn.commit()
    conn.close()


# --------------------------------------------------------------------------- engine calls


def transfer(
    src_url: str,
    dst_url: str,
    target: str,
    mode: str,
    *,
    key: list[str] | None = None,
    fast_paths: bool = True,
    run_id: str | None = None,
) -> Any:
    from dpone_core.executor.context import ProcessContext
    from dpone_core.executor.transfer import run_transfer
    from dpone_core.manifest import TransferProcess

    process = TransferProcess.model_validate(
        {
            "source": {"connection": "src", "table": "orders"},
            "target": {"connection": "dst", "table": target},
            "strategy": {"mode": mode, "key": key or []},
            "batch_size": BATCH,
        }
    )
    ctx = ProcessContext(
        manifest_path=ROOT / "bench" / "bench.yml",
        process_name="bench",
        run_id=run_id or uuid.uuid4().hex,
        try_number=1,
        job_attempt=1,
        generation=1,
        connections={"src": src_url, "dst": dst_url},
        progress=io.StringIO(),
    )
    result = run_transfer(process, ctx, fast_paths=fast_paths)
    if result.status != "passed":
        raise SystemExit(f"run_transfer failed: {result.errors}")
    return result


# --------------------------------------------------------------------------- peers


def plain_loop(src: Path, dst: Path, insert_sql: str) -> None:
    source = sqlite3.connect(src)
    target = sqlite3.connect(dst)
    cur = source.execute(f"SELECT {COLUMNS} FROM orders")
    while rows := cur.fetchmany(BATCH):
        target.executemany(insert_sql, rows)
    target.commit()
    source.close()
    target.close()


def attach_copy(src: Path, dst: Path, insert_head: str, tail: str = "") -> None:
    target = sqlite3.connect(dst, isolation_level=None)
    target.execute("ATTACH DATABASE ? AS src", (str(src),))
    target.execute("BEGIN")
    target.execute(f"{insert_head} SELECT {COLUMNS} FROM src.orders WHERE true{tail}")
    target.execute("COMMIT")
    target.close()


def pg_executemany(src: Path, dsn: str, table: str) -> None:
    import psycopg

    source = sqlite3.connect(src)
    with psycopg.connect(dsn) as conn, conn.cursor() as cur:
        rows_cursor = source.execute(f"SELECT {COLUMNS} FROM orders")
        while rows := rows_cursor.fetchmany(BATCH):
            cur.executemany(
                f"INSERT INTO {table} ({COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s)",
                rows,
            )
        conn.commit()
    source.close()


def cli(name: str) -> str | None:
    """Path of a command-line tool (/usr/bin first), or None."""
    path = f"/usr/bin/{name}"
    return path if os.access(path, os.X_OK) else shutil.which(name)


def missing_clis() -> str | None:
    """Why the shell-pipe peers cannot run here (None: they can)."""
    missing = [name for name in ("sqlite3", "psql") if cli(name) is None]
    return f"{' and '.join(missing)} not installed" if missing else None


def sqlite_to_psql(src: Path, dsn: str, psql_commands: list[str]) -> None:
    """``sqlite3 -csv <src> 'SELECT ...' | psql -c ... -c ...`` (one psql session)."""
    sqlite3_cli, psql_cli = cli("sqlite3"), cli("psql")
    assert sqlite3_cli is not None and psql_cli is not None
    reader = subprocess.Popen(
        [sqlite3_cli, "-csv", str(src), f"SELECT {COLUMNS} FROM orders"],
        stdout=subprocess.PIPE,
    )
    args = [psql_cli, dsn, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    for command in psql_commands:
        args += ["-c", command]
    writer = subprocess.run(args, stdin=reader.stdout, capture_output=True, text=True)
    assert reader.stdout is not None
    reader.stdout.close()
    if reader.wait() != 0 or writer.returncode != 0:
        raise SystemExit(f"pipe failed: {shlex.join(args)}: {writer.stderr.strip()}")


def pg_pipe_append(src: Path, dsn: str, table: str) -> None:
    sqlite_to_psql(src, dsn, [f"\\copy {table} FROM STDIN (FORMAT csv)"])


def changed_sql(operator: str, old: str, new: str) -> str:
    columns = [c.strip() for c in COLUMNS.split(",")][1:]
    left = ", ".join(f"{old}.{c}" for c in columns)
    right = ", ".join(f"{new}.{c}" for c in columns)
    return f"({left}) {operator} ({right})"


def upsert_tail_sql() -> str:
    columns = [c.strip() for c in COLUMNS.split(",")][1:]
    return " ON CONFLICT (order_id) DO UPDATE SET " + ", ".join(
        f"{c} = excluded.{c}" for c in columns
    )


def pg_merge_limit(src: Path, dsn: str, table: str) -> None:
    """The hand-written PostgreSQL merge: pipe into a TEMP stage, upsert what changed."""
    sqlite_to_psql(
        src,
        dsn,
        [
            "BEGIN",
            f"CREATE TEMP TABLE stage (LIKE {table}) ON COMMIT DROP",
            "\\copy stage FROM STDIN (FORMAT csv)",
            f"INSERT INTO {table} AS t ({COLUMNS}) SELECT {COLUMNS} FROM stage"
            + upsert_tail_sql()
            + " WHERE "
            + changed_sql("IS DISTINCT FROM", "t", "excluded"),
            "COMMIT",
        ],
    )


def sqlite_merge_limit(src: Path, dst: Path) -> None:
    """The hand-written SQLite merge: ATTACH, a TEMP stage, upsert what changed."""
    target = sqlite3.connect(dst, isolation_level=None)
    target.execute("ATTACH DATABASE ? AS src", (str(src),))
    target.execute("BEGIN")
    target.execute(f"CREATE TEMP TABLE stage AS SELECT {COLUMNS} FROM src.orders")
    target.execute(
        f"INSERT INTO t ({COLUMNS}) SELECT {COLUMNS} FROM stage WHERE true"
        + upsert_tail_sql()
        + " WHERE "
        + changed_sql("IS NOT", "t", "excluded")
    )
    target.execute("COMMIT")
    target.close()


# --------------------------------------------------------------------------- harness


@dataclass
class Case:
    group: str
    name: str
    setup: Callable[[], None]
    run: Callable[[], None]
    times: list[float] = field(default_factory=list)
    #: The group's reference for the "vs peer" column and its goal.
    peer: bool = False
    #: Why this case cannot run here (printed instead of a time).
    skipped: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)


def measure(cases: list[Case], repeat: int) -> None:
    for round_no in range(repeat):
        for case in cases:
            if case.skipped:
                continue
            case.setup()
            started = time.perf_counter()
            case.run()
            case.times.append(time.perf_counter() - started)
            print(
                f"  [{round_no + 1}/{repeat}] {case.group}: {case.name}: {case.times[-1]:.2f}s",
                file=sys.stderr,
                flush=True,
            )


def fresh(path: Path, ddl: str | None = None, template: Path | None = None) -> Callable[[], None]:
    def setup() -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        if template is not None:
            shutil.copyfile(template, path)
        if ddl is not None:
            conn = sqlite3.connect(path)
            conn.executescript(ddl)
            conn.close()

    return setup


def pg_fresh(dsn: str, schema: str, ddl: str | None, *, keep: bool = False) -> Callable[[], None]:
    """A fresh schema (``keep``: only a fresh ``t``, the merge template stays)."""
    import psycopg

    def setup() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if keep:
                conn.execute(f'DROP TABLE IF EXISTS "{schema}"."t"')
                conn.execute(f'DROP TABLE IF EXISTS "{schema}"."_dpone_loads"')
            else:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
            if ddl is not None:
                conn.execute(ddl)
                if keep:
                    # A target that has been around: statistics and visibility map set.
                    conn.execute(f'VACUUM ANALYZE "{schema}"."t"')

    return setup


def _proc_status_kib(field: str) -> int:
    """A ``/proc/self/status`` size in KiB (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _vm_rss_kib() -> int:
    """Current resident set size."""
    return _proc_status_kib("VmRSS")


def child_rss(args: argparse.Namespace) -> int:
    """Subprocess entry: one load; prints peak RSS and the RSS growth during the load (KiB)."""
    import threading

    import dpone_core.executor.transfer  # noqa: F401  (imports before the baseline)

    before = _vm_rss_kib()
    highest = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.005):
            highest[0] = max(highest[0], _vm_rss_kib())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    transfer(args.src, args.dst, args.target, "append", fast_paths=args.path != "general")
    done.set()
    sampler.join()
    # VmHWM is this process image's high-water mark. ru_maxrss is not: Linux carries
    # it across exec, so a child of a large parent reported the parent's size.
    peak = _proc_status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kib": before, "growth_kib": highest[0] - before, "peak_kib": peak}))
    return 0


def run_child(src: Path, dst_url: str, target: str, path: str) -> dict[str, int]:
    out = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child-rss",
            "--src",
            f"sqlite:///{src}",
            "--dst",
            dst_url,
            "--target",
            target,
            "--path",
            path,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


@dataclass(frozen=True)
class Setup:
    """The files, URLs and schemas every case of one benchmark run shares."""

    work: Path
    src: Path
    changed: Path
    merge_template: Path
    dst: Path
    pg_url: str
    libpq: str
    schema: str

    @property
    def src_url(self) -> str:
        return f"sqlite:///{self.src}"

    @property
    def dst_url(self) -> str:
        return f"sqlite:///{self.dst}"


PLAIN_INSERT = f"INSERT INTO t ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"


def sqlite_cases(f: Setup) -> list[Case]:
    """sqlite -> sqlite append and merge: the plain loop, SQLite's own, the limit, dpone."""
    return sqlite_append_cases(f) + sqlite_merge_cases(f)


def sqlite_append_cases(f: Setup) -> list[Case]:
    src, dst, src_url, dst_url = f.src, f.dst, f.src_url, f.dst_url
    plain_insert = PLAIN_INSERT
    empty_t = f"CREATE TABLE t ({TARGET_COLUMNS});"
    append = "sqlite->sqlite append"
    return [
        Case(
            append,
            "plain fetchmany/executemany loop",
            fresh(dst, empty_t),
            lambda: plain_loop(src, dst, plain_insert),
        ),
        Case(
            append,
            "SQLite ATTACH + INSERT ... SELECT",
            fresh(dst, empty_t),
            lambda: attach_copy(src, dst, f"INSERT INTO t ({COLUMNS})"),
            peer=True,
        ),
        Case(
            append,
            "run_transfer general path, new target",
            fresh(dst),
            lambda: transfer(src_url, dst_url, "t", "append", fast_paths=False),
        ),
        Case(
            append,
            "run_transfer general path, existing target",
            fresh(dst, empty_t),
            lambda: transfer(src_url, dst_url, "t", "append", fast_paths=False),
        ),
        Case(
            append,
            "run_transfer fast path, new target",
            fresh(dst),
            lambda: transfer(src_url, dst_url, "t", "append"),
        ),
        Case(
            append,
            "run_transfer fast path, existing target",
            fresh(dst, empty_t),
            lambda: transfer(src_url, dst_url, "t", "append"),
        ),
    ]


def sqlite_merge_cases(f: Setup) -> list[Case]:
    changed, dst, merge_template, dst_url = f.changed, f.dst, f.merge_template, f.dst_url
    plain_insert = PLAIN_INSERT
    upsert_tail = upsert_tail_sql()
    merge = "sqlite->sqlite merge (10% changed)"
    return [
        Case(
            merge,
            "plain executemany upsert loop",
            fresh(dst, template=merge_template),
            lambda: plain_loop(changed, dst, plain_insert + upsert_tail),
        ),
        Case(
            merge,
            "SQLite ATTACH + INSERT ... SELECT ... ON CONFLICT",
            fresh(dst, template=merge_template),
            lambda: attach_copy(changed, dst, f"INSERT INTO t ({COLUMNS})", upsert_tail),
        ),
        Case(
            merge,
            "limit: ATTACH + TEMP stage + ON CONFLICT ... WHERE changed",
            fresh(dst, template=merge_template),
            lambda: sqlite_merge_limit(changed, dst),
            peer=True,
        ),
        Case(
            merge,
            "run_transfer general path",
            fresh(dst, template=merge_template),
            lambda: transfer(
                f"sqlite:///{changed}",
                dst_url,
                "t",
                "merge",
                key=["order_id"],
                fast_paths=False,
            ),
        ),
        Case(
            merge,
            "run_transfer fast path",
            fresh(dst, template=merge_template),
            lambda: transfer(f"sqlite:///{changed}", dst_url, "t", "merge", key=["order_id"]),
        ),
    ]


def pg_cases(f: Setup) -> list[Case]:
    """sqlite -> PostgreSQL append and merge: executemany, the psql pipe, the limit, dpone."""
    src, changed, libpq, pg_url, schema = f.src, f.changed, f.libpq, f.pg_url, f.schema
    src_url = f.src_url
    to_pg = "sqlite->postgres append"
    pg_t = f'"{schema}"."t"'
    pg_empty = f"CREATE TABLE {pg_t} ({PG_TARGET_COLUMNS})"
    no_cli = missing_clis()
    pg_merge = "sqlite->postgres merge (10% changed)"
    # Its own schema: the append cases drop theirs before every run.
    merge_schema = f"{schema}_m"
    pg_mt = f'"{merge_schema}"."t"'
    pg_from_template = (
        f'CREATE TABLE {pg_mt} AS TABLE "{merge_schema}"."merge_template"; '
        f'CREATE UNIQUE INDEX t_dpone_key ON {pg_mt} ("order_id")'
    )
    return [
        Case(
            to_pg,
            "psycopg executemany loop",
            pg_fresh(libpq, schema, pg_empty),
            lambda: pg_executemany(src, libpq, pg_t),
        ),
        Case(
            to_pg,
            "sqlite3 -csv | psql \\copy (existing table)",
            pg_fresh(libpq, schema, pg_empty),
            lambda: pg_pipe_append(src, libpq, pg_t),
            peer=True,
            skipped=no_cli,
        ),
        Case(
            to_pg,
            "run_transfer COPY, new target",
            pg_fresh(libpq, schema, None),
            lambda: transfer(src_url, pg_url, f"{schema}.t", "append"),
        ),
        Case(
            to_pg,
            "run_transfer COPY, existing target",
            pg_fresh(libpq, schema, pg_empty),
            lambda: transfer(src_url, pg_url, f"{schema}.t", "append"),
        ),
        Case(
            pg_merge,
            "limit: psql \\copy TEMP stage + ON CONFLICT ... WHERE changed",
            pg_fresh(libpq, merge_schema, pg_from_template, keep=True),
            lambda: pg_merge_limit(changed, libpq, pg_mt),
            peer=True,
            skipped=no_cli,
        ),
        Case(
            pg_merge,
            "run_transfer merge (COPY into staging)",
            pg_fresh(libpq, merge_schema, pg_from_template, keep=True),
            lambda: transfer(
                f"sqlite:///{changed}",
                pg_url,
                f"{merge_schema}.t",
                "merge",
                key=["order_id"],
            ),
        ),
    ]


def rss_rows(f: Setup, n: int, *, skip_pg: bool) -> list[tuple[str, list[dict[str, int]]]]:
    """Peak RSS of one load in a fresh process, at N/10 and N rows, per path."""
    src, dst, dst_url, libpq, schema = f.src, f.dst, f.dst_url, f.libpq, f.schema
    rows: list[tuple[str, list[dict[str, int]]]] = []
    small = f.work / "source_small.db"
    build_source(small, max(n // 10, 1))
    rss_paths: list[tuple[str, str, str | None]] = [
        ("general path sqlite->sqlite", "general", None)
    ]
    if not skip_pg:
        rss_paths.append(("COPY path sqlite->postgres", "fast", f.pg_url))
    for label, path, url in rss_paths:
        measured = []
        for source in (small, src):
            if url is None:
                fresh(dst)()
                out = run_child(source, dst_url, "t", path)
            else:
                pg_fresh(libpq, schema, None)()
                out = run_child(source, url, f"{schema}.t", path)
            measured.append(out)
        rows.append((label, measured))
    return rows


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--pg-dsn", default=os.environ.get("DPONE_TEST_PG_DSN", DEFAULT_PG))
    parser.add_argument("--skip-pg", action="store_true", help="SQLite cases only")
    parser.add_argument("--groups", default="", help="only groups naming one of these words")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS section")
    parser.add_argument("--child-rss", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--dst", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.child_rss:
        return child_rss(args)
    n = args.rows
    libpq = args.pg_dsn.replace("postgresql+psycopg://", "postgresql://", 1)
    work = Path(tempfile.mkdtemp(prefix="dpone-bench-"))
    f = Setup(
        work=work,
        src=work / "source.db",
        changed=work / "source_changed.db",
        merge_template=work / "merge_template.db",
        dst=work / "target.db",
        pg_url=args.pg_dsn,
        libpq=libpq,
        schema=f"dpone_bench_{uuid.uuid4().hex[:8]}",
    )
    try:
        print(f"building {n:,}-row sources in {work} ...", file=sys.stderr, flush=True)
        build_source(f.src, n)
        build_source(f.changed, n, changed_every=10)
        transfer(f.src_url, f"sqlite:///{f.merge_template}", "t", "merge", key=["order_id"])
        cases = sqlite_cases(f) + ([] if args.skip_pg else pg_cases(f))
        wanted = [word for word in args.groups.split(",") if word]
        if wanted:
            cases = [c for c in cases if any(word in c.group for word in wanted)]
        if any(case.group.startswith("sqlite->postgres merge") for case in cases):
            pg_fresh(libpq, f"{f.schema}_m", None)()
            merge_template = f"{f.schema}_m.merge_template"
            transfer(f.src_url, f.pg_url, merge_template, "merge", key=["order_id"])
        measure(cases, args.repeat)
        rss = [] if args.no_rss else rss_rows(f, n, skip_pg=args.skip_pg)
        report(n, args.repeat, cases, rss)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.skip_pg:
            import psycopg

            with psycopg.connect(libpq, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{f.schema}" CASCADE')
                conn.execute(f'DROP SCHEMA IF EXISTS "{f.schema}_m" CASCADE')
    return 0


def report(
    n: int, repeat: int, cases: list[Case], rss_rows: list[tuple[str, list[dict[str, int]]]]
) -> None:
    print(f"\ndpone transfer benchmark: {n:,} rows x 6 columns, median of {repeat} run(s)")
    print(
        f"python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs"
    )
    print("ratios are speed: the other case's time / this case's time (> 1: this is faster)")
    header = f"{'case':<70} {'seconds':>8} {'rows/s':>11} {'vs plain':>9} {'vs peer':>8}"
    groups: dict[str, list[Case]] = {}
    for case in cases:
        groups.setdefault(case.group, []).append(case)
    for group, members in groups.items():
        print(f"\n{group}\n{header}")
        plain = members[0] if not members[0].skipped else None
        peer = next((c for c in members if c.peer and not c.skipped), None)
        for case in members:
            marker = " (peer)" if case.peer else ""
            if case.skipped:
                print(f"  {case.name + marker:<68} skipped: {case.skipped}")
                continue
            vs_plain = fmt_ratio(plain.median / case.median) if plain else "-"
            vs_peer = fmt_ratio(peer.median / case.median) if peer else "-"
            print(
                f"  {case.name + marker:<68} {case.median:>8.2f} {n / case.median:>11,.0f} "
                f"{vs_plain:>9} {vs_peer:>8}"
            )
    if rss_rows:
        print("\npeak RSS (fresh subprocess per load, run_transfer append, batch_size 10,000)")
    for label, (small, large) in rss_rows:
        ratio = large["peak_kib"] / small["peak_kib"]
        print(
            f"  {label:<30} {n // 10:>9,} rows: {small['peak_kib'] / 1024:6.1f} MiB "
            f"(+{small['growth_kib'] / 1024:.1f} during the load)   "
            f"{n:,} rows: {large['peak_kib'] / 1024:6.1f} MiB "
            f"(+{large['growth_kib'] / 1024:.1f})   ratio {ratio:.2f}x"
        )
    print("\ngoals")
    for line in goal_lines(cases):
        print(f"  {line}")
    for label, (small, large) in rss_rows:
        ratio = large["peak_kib"] / small["peak_kib"]
        print(
            f"  peak RSS {label}: {ratio:.2f}x from {n // 10:,} to {n:,} rows (goal <= 1.5x): "
            f"{'met' if ratio <= 1.5 else 'NOT met'}"
        )


def goal_lines(cases: list[Case]) -> list[str]:
    """One line per goal whose cases ran: the ratio, the goal, met or NOT met."""
    by_name = {(c.group, c.name): c for c in cases if not c.skipped}
    lines: list[str] = []

    def speed(group: str, name: str, peer: str, goal: float, peer_label: str) -> None:
        case, base = by_name.get((group, name)), by_name.get((group, peer))
        if case is None or base is None:
            return
        ratio = base.median / case.median
        lines.append(
            f"{name}: {ratio:.2f}x the speed of {peer_label} (goal >= {goal:.2f}x): "
            f"{'met' if ratio >= goal else 'NOT met'}"
        )

    def time_ratio(group: str, name: str, peer: str, goal: float, peer_label: str) -> None:
        case, base = by_name.get((group, name)), by_name.get((group, peer))
        if case is None or base is None:
            return
        ratio = case.median / base.median
        lines.append(
            f"{group.split(' (')[0]}, {name}: {ratio:.2f}x the time of {peer_label} "
            f"(goal <= {goal:.2f}x): {'met' if ratio <= goal else 'NOT met'}"
        )

    append, merge = "sqlite->sqlite append", "sqlite->sqlite merge (10% changed)"
    to_pg, pg_merge = "sqlite->postgres append", "sqlite->postgres merge (10% changed)"
    plain = "plain fetchmany/executemany loop"
    for kind in ("new target", "existing target"):
        speed(append, f"run_transfer general path, {kind}", plain, 0.9, "the plain loop")
    for kind in ("new target", "existing target"):
        time_ratio(
            append,
            f"run_transfer fast path, {kind}",
            "SQLite ATTACH + INSERT ... SELECT",
            2.0,
            "SQLite's own copy",
        )
    for kind in ("new target", "existing target"):
        speed(to_pg, f"run_transfer COPY, {kind}", "psycopg executemany loop", 3.0, "executemany")
        speed(
            to_pg,
            f"run_transfer COPY, {kind}",
            "sqlite3 -csv | psql \\copy (existing table)",
            0.8,
            "the sqlite3 | psql pipe",
        )
    limit = "the hand-written limit"
    time_ratio(
        merge,
        "run_transfer fast path",
        "limit: ATTACH + TEMP stage + ON CONFLICT ... WHERE changed",
        1.25,
        limit,
    )
    time_ratio(
        pg_merge,
        "run_transfer merge (COPY into staging)",
        "limit: psql \\copy TEMP stage + ON CONFLICT ... WHERE changed",
        1.25,
        limit,
    )
    for case in cases:
        if case.skipped:
            lines.append(f"{case.group}, {case.name}: skipped ({case.skipped}), no goal measured")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
