"""Reading the source: the extraction query, its snapshot, and the general row path.

The extraction selects the staging columns from the source table or query,
filtered by

* the partition window ``[window_start, window_end)`` on the cursor column when
  the run has one (it replaces the watermark filter), else
* ``cursor >= watermark`` for ``incremental`` loads once a watermark exists: the
  watermark is inclusive, so a row committed later with a cursor *equal* to it is
  read by the next load (a key merges the re-read boundary rows; without a key the
  engine drops boundary rows already in the target), and
* ``strategy.null_cursor`` for rows whose cursor is NULL: ``skip`` and ``error``
  leave them out (``error`` first counts them in the same snapshot and fails the
  load when there are any), ``include`` reads them on every load.

Values a target cannot hold are adapted on the way: a float NaN bound for SQLite
(which would store NULL) travels as the text ``'NaN'``.

Rows and the new watermark (``max(cursor)`` over the same filter) are read in
one snapshot of the source -- a ``REPEATABLE READ, READ ONLY`` transaction on
PostgreSQL, one read transaction on SQLite -- so a row committed to the source
while the load runs is either in both or in neither, and never skipped by the
next incremental load.

The general path streams ``batch_size`` rows at a time: ``fetchmany`` on the
source (a server-side cursor on PostgreSQL) into the staging table
(``executemany`` on SQLite, ``COPY`` on PostgreSQL). Memory holds one batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.dialects import Dialect
from dpone_core.executor.transfer.dialects.base import BatchWriter, Rows
from dpone_core.executor.transfer.errors import TransferFailed
from dpone_core.executor.transfer.progress import Progress
from dpone_core.executor.transfer.shapes import SourceShape, source_from_clause
from dpone_core.executor.transfer.typemap import Family

__all__ = [
    "Extraction",
    "Window",
    "begin_snapshot",
    "build_extraction",
    "check_null_cursors",
    "end_snapshot",
    "executemany_sink",
    "iter_batches",
    "max_cursor",
    "stream_rows",
]


@dataclass(frozen=True)
class Window:
    start: str | None
    end: str | None


@dataclass(frozen=True)
class Extraction:
    """``SELECT`` of the rows to stage and of their greatest cursor, with parameters."""

    select_sql: str
    max_sql: str | None
    params: tuple[Any, ...]
    cursor: str | None = None
    #: ``SELECT count(*)`` of source rows with a NULL cursor (``null_cursor: error``).
    null_sql: str | None = None
    #: Positions of float columns whose NaN the target cannot hold (sent as ``'NaN'``).
    nan_columns: tuple[int, ...] = ()


NullCursor = Literal["error", "include", "skip"]


def build_extraction(
    db: Endpoint,
    shape: SourceShape,
    columns: Sequence[str],
    *,
    cursor: str | None,
    watermark: Any,
    incremental: bool,
    window: Window | None,
    target_dialect: Dialect,
    schema: str | None = None,
    null_cursor: NullCursor = "error",
) -> Extraction:
    """The extraction query on ``db`` (``schema`` reads the table from an attached SQLite).

    Each column is selected in a form the target can bind (the source's dialect renders
    values as text when the target's driver cannot take them as they are).
    """
    select_list: list[str] = []
    for name in columns:
        quoted = db.quote(name)
        expr = db.dialect.export_expression(shape.column(name).type, quoted, target_dialect)
        select_list.append(quoted if expr == quoted else f"{expr} AS {quoted}")
    from_clause = source_from_clause(db, shape, schema=schema)
    conditions: list[str] = []
    params: list[Any] = []
    if cursor is not None:
        q_cursor = db.quote(cursor)
        if window is not None and (window.start or window.end):
            if window.start:
                conditions.append(f"{q_cursor} >= {db.ph}")
                params.append(window.start)
            if window.end:
                conditions.append(f"{q_cursor} < {db.ph}")
                params.append(window.end)
        elif incremental:
            if watermark is not None:
                since = f"{q_cursor} >= {db.ph}"
                params.append(watermark)
                conditions.append(
                    f"({since} OR {q_cursor} IS NULL)" if null_cursor == "include" else since
                )
            elif null_cursor != "include":
                conditions.append(f"{q_cursor} IS NOT NULL")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    select_sql = f"SELECT {', '.join(select_list)} FROM {from_clause}{where}"
    max_sql = (
        f"SELECT max({db.quote(cursor)}) FROM {from_clause}{where}" if cursor is not None else None
    )
    null_sql = None
    if cursor is not None and incremental and window is None and null_cursor == "error":
        null_sql = f"SELECT count(*) FROM {from_clause} WHERE {db.quote(cursor)} IS NULL"
    nan_columns: tuple[int, ...] = ()
    if not target_dialect.holds_nan and db.dialect.holds_nan:
        nan_columns = tuple(
            position
            for position, name in enumerate(columns)
            if shape.column(name).type.family is Family.FLOAT
        )
    return Extraction(
        select_sql=select_sql,
        max_sql=max_sql,
        params=tuple(params),
        cursor=cursor,
        null_sql=null_sql,
        nan_columns=nan_columns,
    )


def check_null_cursors(db: Endpoint, extraction: Extraction) -> None:
    """TransferFailed when the source has rows whose cursor is NULL (``null_cursor: error``)."""
    if extraction.null_sql is None:
        return
    count = int(db.scalar(extraction.null_sql) or 0)
    if count:
        rows = "1 source row has" if count == 1 else f"{count:,} source rows have"
        raise TransferFailed(
            f"{rows} a NULL cursor {extraction.cursor!r}: no watermark can track them, and an "
            "incremental load does not skip rows silently; set strategy.null_cursor to "
            "'include' (merged on every load; needs a key) or 'skip' (left out), or give "
            "them cursor values"
        )


def begin_snapshot(db: Endpoint) -> None:
    """Open the read snapshot that the rows and their max cursor share."""
    db.dialect.begin_snapshot(db.driver)


def end_snapshot(db: Endpoint) -> None:
    db.dialect.end_snapshot(db.driver)


def max_cursor(db: Endpoint, extraction: Extraction) -> Any:
    if extraction.max_sql is None:
        return None
    return db.scalar(extraction.max_sql, extraction.params)


def iter_batches(
    db: Endpoint, extraction: Extraction, batch_size: int
) -> Iterator[list[tuple[Any, ...]]]:
    """Stream the extraction in lists of at most ``batch_size`` rows (one list in memory)."""
    return db.dialect.iter_batches(db.driver, extraction.select_sql, extraction.params, batch_size)


def executemany_sink(db: Endpoint, staging_sql: str, columns: Sequence[str]) -> BatchWriter:
    """A batch writer into a staging table: one ``executemany`` per batch."""
    placeholders = ", ".join(db.ph for _ in columns)
    sql = f"INSERT INTO {staging_sql} ({db.columns(columns)}) VALUES ({placeholders})"
    return db.dialect.batch_writer(db.driver, sql)


def stream_rows(
    source: Endpoint,
    extraction: Extraction,
    write: BatchWriter,
    *,
    batch_size: int,
    progress: Progress,
) -> int:
    """The general path: fetch a batch, write it, repeat. Returns the rows moved."""
    if extraction.nan_columns:
        write = _nan_as_text(write, extraction.nan_columns)
    total = 0
    for rows in iter_batches(source, extraction, batch_size):
        write(rows)
        total += len(rows)
        progress.add(len(rows))
    return total


def _nan_as_text(write: BatchWriter, positions: tuple[int, ...]) -> BatchWriter:
    """Send a float NaN as the text ``'NaN'`` (SQLite would store a NaN REAL as NULL)."""

    def fixed(rows: Rows) -> None:
        out = rows
        for index, row in enumerate(rows):
            if any(row[p] != row[p] for p in positions):  # only NaN differs from itself
                if out is rows:
                    out = list(rows)
                values = list(row)
                for p in positions:
                    if values[p] != values[p]:
                        values[p] = "NaN"
                out[index] = tuple(values)
        write(out)

    return fixed
