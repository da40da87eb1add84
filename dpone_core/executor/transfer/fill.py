"""Filling staging: which path the rows take, chosen in one place, and taking it.

:func:`choose_fill_path` is a pure function of the two dialects' capabilities and
of a few facts about the load; the engine calls it once, before the load
transaction, and :func:`fill_staging` follows the answer:

=======================  ===========================================================
path                     when (first match wins)
=======================  ===========================================================
``SAME_DATABASE``        source and target are one database of a dialect whose write
                         lock covers the whole database (SQLite): ``INSERT INTO
                         staging SELECT ...`` on the target connection
``ROWS_ON_TARGET``       the same, with fast paths off: ``fetchmany`` and
                         ``executemany`` both on the target connection (a second
                         connection would deadlock against the load's write lock)
``ATTACH``               same dialect, the target ``attaches_databases`` (SQLite), the
                         source is a table in a file: the source file is attached
                         read-only and filled with one ``INSERT ... SELECT``
``COPY_THROUGH``         the target takes ``COPY`` and the source speaks it too
                         (PostgreSQL -> PostgreSQL): ``COPY TO STDOUT`` piped into
                         ``COPY FROM STDIN``, rows never parsed in Python
``ROWS_TO_COPY``         the target takes ``COPY`` (anything -> PostgreSQL):
                         ``fetchmany`` batches formatted in bulk on a reader
                         thread and written with ``Copy.write`` (``write_row``
                         for sources of other than basic values; see ``pg_copy``)
``ROWS_TO_EXECUTEMANY``  otherwise (anything -> SQLite): ``fetchmany`` batches
                         written with ``executemany``
=======================  ===========================================================

``fast_paths=False`` (benchmarks, tests) leaves only the row paths. Every path
but the two on the target connection reads inside one snapshot of the source,
so the rows and their max cursor agree.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from dpone_core.executor.transfer import pg_copy, sqlite_fast
from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.dialects import Dialect
from dpone_core.executor.transfer.extract import (
    Extraction,
    begin_snapshot,
    check_null_cursors,
    end_snapshot,
    executemany_sink,
    max_cursor,
    stream_rows,
)
from dpone_core.executor.transfer.progress import Progress

__all__ = ["FillPath", "choose_fill_path", "fill_staging"]


class FillPath(Enum):
    """How rows get from the source into the staging table (see the module docstring)."""

    SAME_DATABASE = "same database"
    ROWS_ON_TARGET = "rows on the target connection"
    ATTACH = "attach"
    COPY_THROUGH = "copy through"
    ROWS_TO_COPY = "rows to copy"
    ROWS_TO_EXECUTEMANY = "rows to executemany"

    @property
    def reads_through_target(self) -> bool:
        """The extraction runs on the target's connection (inside the load transaction)."""
        return self in (FillPath.SAME_DATABASE, FillPath.ROWS_ON_TARGET, FillPath.ATTACH)

    @property
    def in_database(self) -> bool:
        """One ``INSERT ... SELECT``: rows never pass through Python."""
        return self in (FillPath.SAME_DATABASE, FillPath.ATTACH)


def choose_fill_path(
    source: Dialect,
    target: Dialect,
    *,
    same_database: bool,
    table_source: bool,
    source_is_file: bool,
    fast_paths: bool,
) -> FillPath:
    """The one decision of how staging is filled (pure; see the module docstring).

    ``same_database``: both endpoints reach one database; ``table_source``: the
    source is a table, not a query (a query on another file would resolve its table
    names against the target once attached); ``source_is_file``: the source can be
    opened by another connection (not ``:memory:``).
    """
    same_dialect = source == target
    if same_dialect and same_database and target.locks_whole_database:
        return FillPath.SAME_DATABASE if fast_paths else FillPath.ROWS_ON_TARGET
    if (
        fast_paths
        and same_dialect
        and target.attaches_databases
        and table_source
        and source_is_file
    ):
        return FillPath.ATTACH
    if target.copy_in:
        if fast_paths and source.copy_out:
            return FillPath.COPY_THROUGH
        return FillPath.ROWS_TO_COPY
    return FillPath.ROWS_TO_EXECUTEMANY


def _copy_rows(
    source: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: list[str],
    batch_size: int,
    progress: Progress,
) -> int:
    return pg_copy.copy_rows(
        source, target, extraction, staging_sql, columns, batch_size=batch_size, progress=progress
    )


def _executemany_rows(
    source: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: list[str],
    batch_size: int,
    progress: Progress,
) -> int:
    write = executemany_sink(target, staging_sql, columns)
    return stream_rows(source, extraction, write, batch_size=batch_size, progress=progress)


def _copy_through(
    source: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: list[str],
    batch_size: int,
    progress: Progress,
) -> int:
    return pg_copy.copy_through(source, target, extraction, staging_sql, columns, progress)


_Mover = Callable[[Endpoint, Endpoint, Extraction, str, list[str], int, Progress], int]
#: Paths that read the source on its own connection, inside a snapshot.
_SNAPSHOT_MOVERS: dict[FillPath, _Mover] = {
    FillPath.COPY_THROUGH: _copy_through,
    FillPath.ROWS_TO_COPY: _copy_rows,
    FillPath.ROWS_TO_EXECUTEMANY: _executemany_rows,
}


def fill_staging(
    path: FillPath,
    reader: Endpoint,
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: list[str],
    *,
    batch_size: int,
    progress: Progress,
) -> tuple[int, Any]:
    """Fill staging from one snapshot of the source; returns (rows, max cursor).

    ``reader`` is the endpoint the extraction was built for: the target itself when
    ``path.reads_through_target``, else the source.
    """
    if path.reads_through_target:
        check_null_cursors(target, extraction)
    if path.in_database:
        rows = sqlite_fast.fill_staging(target, extraction, staging_sql, columns, progress)
        return rows, max_cursor(target, extraction)
    if path is FillPath.ROWS_ON_TARGET:
        rows = _executemany_rows(
            target, target, extraction, staging_sql, columns, batch_size, progress
        )
        return rows, max_cursor(target, extraction)
    move = _SNAPSHOT_MOVERS[path]
    begin_snapshot(reader)
    try:
        check_null_cursors(reader, extraction)
        rows = move(reader, target, extraction, staging_sql, columns, batch_size, progress)
        source_max = max_cursor(reader, extraction)
    except BaseException:
        reader.rollback()
        raise
    end_snapshot(reader)
    return rows, source_max
