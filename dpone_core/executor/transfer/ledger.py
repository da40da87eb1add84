"""The load ledger ``_dpone_loads``: which loads committed, with what, up to which watermark.

The ledger lives in the target database, in the target table's schema (SQLite:
``main``), so that recording a load is part of the same transaction that
publishes its rows. One row per load::

    load_id          text primary key   deterministic: (run id, process, generation)
    run_id           text               the run that loaded it
    process          text               the manifest selector
    generation       integer            restart generation of the run id
    target_table     text               as written in the manifest
    mode             text               replace | append | merge | incremental
    status           text               'committed' (a 'loading' row only ever exists
                                        inside the open load transaction)
    cursor_column    text               strategy.cursor, if any
    extracted_rows   bigint             rows read from the source (= staged)
    inserted_rows    bigint             rows added to the target
    updated_rows     bigint             existing target rows changed (merge)
    final_rows       bigint             target row count right after the publish
    watermark_before text               committed watermark when the load started
    watermark_after  text               max(before, max cursor of the staged rows)
    watermark_type   text               how to read the watermark texts back
                                        (int, float, decimal, str, date, datetime, ...)
    started_at       text / timestamptz
    committed_at     text / timestamptz

The primary key is what makes publication exactly-once: the publish transaction
inserts the row, so a load id that committed once can never commit again, and a
resumed attempt that finds its load id committed reports the ledger's counts
instead of loading. The watermark of a (process, target, cursor column) is the
greatest ``watermark_after`` of its committed loads; it moves only when a load
commits.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.errors import TransferFailed
from dpone_core.executor.transfer.names import TableName

__all__ = [
    "LEDGER_TABLE",
    "LedgerRow",
    "claim",
    "committed_watermark",
    "decode_watermark",
    "encode_watermark",
    "ensure_ledger",
    "find_load",
    "is_duplicate_key",
    "jsonable",
    "load_id_for",
    "mark_committed",
    "max_watermark",
]

LEDGER_TABLE = "_dpone_loads"
_COMMITTED = "committed"
_LOADING = "loading"


def load_id_for(run_id: str, process: str, generation: int) -> str:
    """Deterministic load id of (run id, process, generation): a resume finds it again."""
    payload = json.dumps([run_id, process, int(generation)], ensure_ascii=False)
    return "ld-" + hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def _ddl(db: Endpoint, ledger: TableName) -> list[str]:
    table = db.table(ledger)
    count = db.dialect.bigint_type
    stamp = db.dialect.timestamp_type
    index = db.quote(f"{LEDGER_TABLE}_by_target")
    return [
        f"CREATE TABLE IF NOT EXISTS {table} ("
        "load_id TEXT PRIMARY KEY, "
        "run_id TEXT NOT NULL, "
        "process TEXT NOT NULL, "
        "generation INTEGER NOT NULL, "
        "target_table TEXT NOT NULL, "
        "mode TEXT NOT NULL, "
        "status TEXT NOT NULL, "
        "cursor_column TEXT, "
        f"extracted_rows {count}, inserted_rows {count}, updated_rows {count}, "
        f"final_rows {count}, "
        "watermark_before TEXT, watermark_after TEXT, watermark_type TEXT, "
        f"started_at {stamp} NOT NULL, committed_at {stamp})",
        f"CREATE INDEX IF NOT EXISTS {index} ON {table} (target_table, process, status)",
    ]


def ensure_ledger(db: Endpoint, ledger: TableName) -> None:
    """Create the ledger table if it is missing (its own committed transaction)."""
    for statement in _ddl(db, ledger):
        try:
            db.run(statement)
            db.commit()  # SQLite: a no-op, the statement ran outside a transaction
        except Exception:
            # Two first loads racing on PostgreSQL: CREATE ... IF NOT EXISTS is not atomic
            # against a concurrent creator; the loser sees a duplicate and the table exists.
            db.rollback()
            if not _ledger_exists(db, ledger):
                raise


def _ledger_exists(db: Endpoint, ledger: TableName) -> bool:
    return db.dialect.table_exists(db, ledger)


@dataclass(frozen=True)
class LedgerRow:
    load_id: str
    run_id: str
    process: str
    generation: int
    target_table: str
    mode: str
    status: str
    cursor_column: str | None
    extracted_rows: int
    inserted_rows: int
    updated_rows: int
    final_rows: int | None
    watermark_before: Any
    watermark_after: Any

    @property
    def committed(self) -> bool:
        return self.status == _COMMITTED


_COLUMNS = (
    "load_id, run_id, process, generation, target_table, mode, status, cursor_column, "
    "extracted_rows, inserted_rows, updated_rows, final_rows, "
    "watermark_before, watermark_after, watermark_type"
)


def find_load(db: Endpoint, ledger: TableName, load_id: str) -> LedgerRow | None:
    row = db.fetchone(
        f"SELECT {_COLUMNS} FROM {db.table(ledger)} WHERE load_id = {db.ph}", (load_id,)
    )
    if row is None:
        return None
    kind = row[14]
    return LedgerRow(
        load_id=str(row[0]),
        run_id=str(row[1]),
        process=str(row[2]),
        generation=int(row[3]),
        target_table=str(row[4]),
        mode=str(row[5]),
        status=str(row[6]),
        cursor_column=row[7],
        extracted_rows=int(row[8] or 0),
        inserted_rows=int(row[9] or 0),
        updated_rows=int(row[10] or 0),
        final_rows=None if row[11] is None else int(row[11]),
        watermark_before=decode_watermark(row[12], kind),
        watermark_after=decode_watermark(row[13], kind),
    )


def is_duplicate_key(exc: BaseException) -> bool:
    """Whether ``exc`` is a primary-key violation (the load id is already in the ledger)."""
    name = type(exc).__name__
    return name in ("IntegrityError", "UniqueViolation") or "UNIQUE constraint" in str(exc)


def _now(db: Endpoint) -> Any:
    return db.dialect.now()


def claim(
    db: Endpoint,
    ledger: TableName,
    *,
    load_id: str,
    run_id: str,
    process: str,
    generation: int,
    target_table: str,
    mode: str,
    cursor_column: str | None,
) -> None:
    """Insert the load's row as 'loading' inside the open load transaction.

    On SQLite this is also the write that takes the database's write lock; on both
    dialects a concurrent attempt with the same load id waits here and then fails
    with a duplicate key (or finds the row committed).
    """
    p = db.ph
    db.run(
        f"INSERT INTO {db.table(ledger)} (load_id, run_id, process, generation, target_table, "
        f"mode, status, cursor_column, started_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, "
        f"{p}, {p})",
        (
            load_id,
            run_id,
            process,
            generation,
            target_table,
            mode,
            _LOADING,
            cursor_column,
            _now(db),
        ),
    )


def mark_committed(
    db: Endpoint,
    ledger: TableName,
    *,
    load_id: str,
    extracted: int,
    inserted: int,
    updated: int,
    final_rows: int,
    watermark_before: Any,
    watermark_after: Any,
) -> None:
    """Record the load as committed (inside the publish transaction)."""
    before, kind_before = encode_watermark(watermark_before)
    after, kind_after = encode_watermark(watermark_after)
    p = db.ph
    count = db.run(
        f"UPDATE {db.table(ledger)} SET status = {p}, extracted_rows = {p}, inserted_rows = {p}, "
        f"updated_rows = {p}, final_rows = {p}, watermark_before = {p}, watermark_after = {p}, "
        f"watermark_type = {p}, committed_at = {p} WHERE load_id = {p} AND status = {p}",
        (
            _COMMITTED,
            extracted,
            inserted,
            updated,
            final_rows,
            before,
            after,
            kind_after or kind_before,
            _now(db),
            load_id,
            _LOADING,
        ),
    )
    if count != 1:
        raise TransferFailed(f"ledger row of load {load_id} vanished before its commit")


def committed_watermark(
    db: Endpoint, ledger: TableName, *, process: str, target_table: str, cursor_column: str
) -> Any:
    """Greatest watermark of the committed loads of (process, target, cursor column)."""
    p = db.ph
    rows = db.fetchall(
        f"SELECT watermark_after, watermark_type FROM {db.table(ledger)} "
        f"WHERE target_table = {p} AND process = {p} AND status = {p} AND cursor_column = {p} "
        "AND watermark_after IS NOT NULL",
        (target_table, process, _COMMITTED, cursor_column),
    )
    return max_watermark(decode_watermark(text, kind) for text, kind in rows)


# --------------------------------------------------------------------------- watermark values


def encode_watermark(value: Any) -> tuple[str | None, str | None]:
    """A cursor value as (text, type) so that it reads back as the same Python value."""
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("true" if value else "false"), "bool"
    if isinstance(value, int):
        return str(value), "int"
    if isinstance(value, float):
        return repr(value), "float"
    if isinstance(value, Decimal):
        return str(value), "decimal"
    if isinstance(value, datetime):
        return value.isoformat(), "datetime"
    if isinstance(value, date):
        return value.isoformat(), "date"
    if isinstance(value, time):
        return value.isoformat(), "time"
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex(), "bytes"
    return str(value), "str"


def decode_watermark(text: str | None, kind: str | None) -> Any:
    if text is None:
        return None
    try:
        if kind == "bool":
            return text == "true"
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "decimal":
            return Decimal(text)
        if kind == "datetime":
            return datetime.fromisoformat(text)
        if kind == "date":
            return date.fromisoformat(text)
        if kind == "time":
            return time.fromisoformat(text)
        if kind == "bytes":
            return bytes.fromhex(text)
    except ValueError:
        return text
    return text


def _rank(value: Any) -> tuple[int, Any]:
    # SQLite's order across storage classes: numbers < text < blobs.
    if isinstance(value, bool | int | float | Decimal):
        return (0, value)
    if isinstance(value, bytes):
        return (2, value)
    if isinstance(value, datetime | date | time):
        return (1, value.isoformat())
    return (1, str(value))


def max_watermark(values: Iterable[Any]) -> Any:
    """The greatest non-null value; mixed types order like SQLite (numbers < text < blobs)."""
    present = [value for value in values if value is not None]
    if not present:
        return None
    try:
        return max(present)
    except TypeError:
        return max(present, key=_rank)


def jsonable(value: Any) -> Any:
    """A watermark as it appears in results and evidence (JSON-friendly)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return value
