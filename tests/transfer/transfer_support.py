"""Shared helpers of the transfer tests: endpoints, seeding, reading tables back."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import yaml

from dpone_core.executor.context import ProcessContext
from dpone_core.manifest import TransferProcess

DEFAULT_PG_DSN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_dsn() -> str:
    return os.environ.get("DPONE_TEST_PG_DSN", DEFAULT_PG_DSN)


def libpq_dsn(url: str) -> str:
    """The SQLAlchemy URL as a libpq URI (psycopg does not know ``+psycopg``)."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class Side:
    """One database a test reads from or writes to: SQLite file or PostgreSQL schema."""

    kind: str  # "sqlite" | "postgresql"
    url: str
    schema: str | None = None
    path: Path | None = None

    def table(self, name: str) -> str:
        return f"{self.schema}.{name}" if self.schema else name

    # -- direct access (not through the engine) -----------------------------------------

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30)
            try:
                conn.execute(sql.replace("%s", "?"), tuple(params))
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(libpq_dsn(self.url), autocommit=True) as pg:
                pg.execute(sql, tuple(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30)
            try:
                conn.executemany(sql.replace("%s", "?"), list(rows))
                conn.commit()
            finally:
                conn.close()
        else:
            with psycopg.connect(libpq_dsn(self.url)) as pg:
                with pg.cursor() as cur:
                    cur.executemany(sql, list(rows))
                pg.commit()

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        if self.kind == "sqlite":
            assert self.path is not None
            conn = sqlite3.connect(self.path, timeout=30)
            try:
                return [tuple(r) for r in conn.execute(sql.replace("%s", "?"), tuple(params))]
            finally:
                conn.close()
        with psycopg.connect(libpq_dsn(self.url), autocommit=True) as pg:
            return [tuple(r) for r in pg.execute(sql, tuple(params))]

    def exists(self, name: str) -> bool:
        if self.kind == "sqlite":
            return bool(
                self.query("SELECT count(*) FROM sqlite_master WHERE name = %s", (name,))[0][0]
            )
        return self.query("SELECT to_regclass(%s)::text", (self.table(name),))[0][0] is not None

    def tables(self) -> list[str]:
        if self.kind == "sqlite":
            return [r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")]
        return [
            r[0]
            for r in self.query(
                "SELECT tablename::text FROM pg_tables WHERE schemaname = %s", (self.schema,)
            )
        ]


def sqlite_side(path: Path) -> Side:
    return Side("sqlite", f"sqlite:///{path}", path=path)


def connections(source: Side, target: Side) -> dict[str, str]:
    return {"src": source.url, "dst": target.url}


def norm(value: Any) -> Any:
    """One representation for values read back from either database."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, memoryview):
        return bytes(value)
    return value


def rows(side: Side, table: str, columns: str = "*") -> list[tuple[Any, ...]]:
    """All rows of ``table`` (in the side's schema), normalised and sorted (a multiset)."""
    data = side.query(f"SELECT {columns} FROM {side.table(table)}")
    return sorted((tuple(norm(v) for v in row) for row in data), key=repr)


ORDER_COLUMNS = "order_id, customer, amount, status, updated_at"


def create_orders(side: Side, table: str = "orders") -> None:
    stamp = "TEXT" if side.kind == "sqlite" else "timestamp"
    side.execute(
        f"CREATE TABLE {side.table(table)} (order_id integer PRIMARY KEY, customer text, "
        f"amount numeric(10,2), status text, updated_at {stamp})"
    )


def order_row(i: int, version: int = 1) -> tuple[Any, ...]:
    day = 1 + (i % 27)
    return (
        i,
        f"customer {i % 7}",
        float(Decimal(i * 3) + Decimal("0.25") * version),
        ("new", "paid", "shipped")[(i + version) % 3],
        f"2024-0{version}-{day:02d} 10:{i % 60:02d}:00",
    )


def seed_orders(side: Side, ids: Iterable[int], table: str = "orders", version: int = 1) -> None:
    side.executemany(
        f"INSERT INTO {side.table(table)} ({ORDER_COLUMNS}) VALUES (%s, %s, %s, %s, %s)",
        [order_row(i, version) for i in ids],
    )


def update_orders(side: Side, ids: Iterable[int], table: str = "orders", version: int = 2) -> None:
    for i in ids:
        _, _, amount, status, updated_at = order_row(i, version)
        side.execute(
            f"UPDATE {side.table(table)} SET amount = %s, status = %s, updated_at = %s "
            "WHERE order_id = %s",
            (amount, status, updated_at, i),
        )


def process(
    source_table: str | None,
    target_table: str,
    mode: str,
    key: Sequence[str] = (),
    cursor: str | None = None,
    *,
    query: str | None = None,
    batch_size: int = 7,
    source: str = "src",
    target: str = "dst",
) -> TransferProcess:
    spec: dict[str, Any] = {"connection": source}
    if query is not None:
        spec["query"] = query
    else:
        spec["table"] = source_table
    return TransferProcess.model_validate(
        {
            "source": spec,
            "target": {"connection": target, "table": target_table},
            "strategy": {"mode": mode, "key": list(key), "cursor": cursor},
            "batch_size": batch_size,
        }
    )


def context(
    connections: dict[str, str],
    *,
    run_id: str = "run-1",
    generation: int = 1,
    process_name: str = "orders",
    manifest: Path = Path("/tmp/dpone-tests/manifest.yml"),
    progress: io.StringIO | None = None,
    window: tuple[str | None, str | None] = (None, None),
) -> ProcessContext:
    return ProcessContext(
        manifest_path=manifest,
        process_name=process_name,
        run_id=run_id,
        try_number=1,
        job_attempt=1,
        generation=generation,
        connections=connections,
        window_start=window[0],
        window_end=window[1],
        progress=progress if progress is not None else io.StringIO(),
    )


def append_manifest(
    conns: dict[str, str], target: str, **process_fields: Any
) -> dict[str, Any]:
    """A manifest of one process, ``orders``: an append of table ``orders`` of connection
    ``src`` into ``target`` of connection ``dst`` (``process_fields`` added to it)."""
    return {
        "version": 1,
        "connections": conns,
        "processes": {
            "orders": {
                "source": {"connection": "src", "table": "orders"},
                "target": {"connection": "dst", "table": target},
                "strategy": {"mode": "append"},
                **process_fields,
            }
        },
    }


def start_orchestrated_run(workspace: Path, manifest: dict[str, Any]) -> subprocess.Popen[str]:
    """``dpone orchestrate run`` of ``manifest`` (written to ``m.yml``) with run id r1
    on the file backend, started in the background for a test to act on mid-load."""
    (workspace / "m.yml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DPONE_ORCHESTRATION")}
    argv = ["orchestrate", "run", "--format", "json", "--manifest", "m.yml"]
    argv += ["--run-id", "r1", "--backend", "files"]
    return subprocess.Popen(
        [sys.executable, "-m", "dpone_core.cli", *argv],
        cwd=workspace,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def sigterm_when(
    proc: subprocess.Popen[str], ready: Callable[[], bool], what: str, timeout: float
) -> tuple[str, str]:
    """Wait until ``ready()`` (failing if ``proc`` ends first or ``what`` never happens
    within ``timeout`` s), send SIGTERM, and return its ``(stdout, stderr)``; ``proc``
    is killed if it outlives the test."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"{what} never happened"
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
