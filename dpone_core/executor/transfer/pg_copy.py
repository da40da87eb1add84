"""PostgreSQL targets: rows enter the staging table through ``COPY ... FROM STDIN``.

* **PostgreSQL -> PostgreSQL** (fast path): ``COPY (SELECT ...) TO STDOUT`` on the
  source is piped chunk by chunk into ``COPY staging FROM STDIN`` on the target;
  rows are never parsed in Python. Both sessions use text format with UTC and
  ISO styles, so every built-in type round-trips, also into a target column of
  a different (compatible) type.
* **SQLite -> PostgreSQL** (any source whose dialect ``yields_basic_values``): a
  worker thread (:class:`~dpone_core.executor.transfer.prefetch.Prefetch`)
  fetches ``batch_size`` rows at a time and formats each batch into COPY text in
  bulk (:mod:`~dpone_core.executor.transfer.copy_text`), while this thread
  writes the encoded text with ``Copy.write``: reading the source overlaps
  sending and the server's parsing, and no Python call is made per row. The
  text is byte for byte what ``Copy.write_row`` would send.
* **anything else -> PostgreSQL** (a PostgreSQL source with fast paths off):
  batches from the source are written with psycopg's ``Copy.write_row``.

Memory holds one COPY chunk, or at most ``_DEPTH + 2`` formatted batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from dpone_core.executor.transfer.connections import Endpoint, literal_sql
from dpone_core.executor.transfer.copy_text import format_rows
from dpone_core.executor.transfer.extract import Extraction, iter_batches, stream_rows
from dpone_core.executor.transfer.prefetch import Prefetch
from dpone_core.executor.transfer.progress import Progress

__all__ = ["copy_rows", "copy_sink", "copy_through"]

#: Formatted batches that may wait for the COPY (memory: ``_DEPTH + 2`` batches).
_DEPTH = 4


def _copy_in_sql(target: Endpoint, staging_sql: str, columns: Sequence[str]) -> str:
    return f"COPY {staging_sql} ({target.columns(columns)}) FROM STDIN"


def copy_through(
    source: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: Sequence[str],
    progress: Progress,
) -> int:
    """Pipe ``COPY TO STDOUT`` of the source into ``COPY FROM STDIN`` of staging."""
    copy_out = f"COPY ({extraction.select_sql}) TO STDOUT"
    rows = 0
    with (
        source.pg.cursor() as src_cur,
        target.pg.cursor() as tgt_cur,
        src_cur.copy(literal_sql(copy_out), extraction.params) as out,
        tgt_cur.copy(literal_sql(_copy_in_sql(target, staging_sql, columns))) as into,
    ):
        for chunk in out:
            data = bytes(chunk)
            into.write(data)
            # Text COPY escapes newlines inside values, so every b"\n" ends a row.
            count = data.count(b"\n")
            rows += count
            progress.add(count)
    return rows


class _CopySink:
    """Batch writer into a COPY that stays open for the whole load."""

    def __init__(self, target: Endpoint, staging_sql: str, columns: Sequence[str]) -> None:
        self._cursor = target.pg.cursor()
        self._cm = self._cursor.copy(literal_sql(_copy_in_sql(target, staging_sql, columns)))
        self._copy = self._cm.__enter__()

    def write(self, rows: list[tuple[Any, ...]]) -> None:
        write_row = self._copy.write_row
        for row in rows:
            write_row(row)

    def close(self, error: BaseException | None = None) -> None:
        try:
            if error is None:
                self._cm.__exit__(None, None, None)
            else:
                self._cm.__exit__(type(error), error, error.__traceback__)
        finally:
            self._cursor.close()


def copy_sink(
    target: Endpoint, staging_sql: str, columns: Sequence[str]
) -> tuple[Callable[[list[tuple[Any, ...]]], None], Callable[[BaseException | None], None]]:
    """``(write, close)`` for a COPY into staging; call ``close(None)`` to finish it."""
    sink = _CopySink(target, staging_sql, columns)
    return sink.write, sink.close


def copy_rows(
    source: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: Sequence[str],
    *,
    batch_size: int,
    progress: Progress,
) -> int:
    """Stream the extraction into staging through one COPY; returns the rows moved.

    Overlapped and bulk-formatted when the source yields only basic values, else
    row by row with ``write_row`` (see the module docstring).
    """
    if not source.dialect.yields_basic_values or extraction.nan_columns:
        write, close = copy_sink(target, staging_sql, columns)
        try:
            rows = stream_rows(source, extraction, write, batch_size=batch_size, progress=progress)
        except BaseException as exc:
            close(exc)
            raise
        close(None)
        return rows
    encoding = target.pg.info.encoding

    def formatted() -> Iterator[tuple[bytes, int]]:
        for batch in iter_batches(source, extraction, batch_size):
            yield format_rows(batch).encode(encoding), len(batch)

    total = 0
    with (
        target.pg.cursor() as cursor,
        cursor.copy(literal_sql(_copy_in_sql(target, staging_sql, columns))) as copy,
        Prefetch(formatted, depth=_DEPTH, name="dpone-copy-reader") as batches,
    ):
        for data, count in batches:
            copy.write(data)
            total += count
            progress.add(count)
    return total
