"""SQLite -> SQLite fast path: the rows never pass through Python.

When both sides are SQLite and the source is a table (or a query on the very
database file of the target), the target connection reads the source directly
(:func:`~dpone_core.executor.transfer.fill.choose_fill_path` decides when):
a different file is ``ATTACH``-ed read-only as ``dpone_src`` before the load
transaction starts, then one ``INSERT INTO staging SELECT ... FROM
dpone_src.table WHERE ...`` fills the staging table. The same file needs no
attach. A query on another file is not eligible (its unqualified table names
would resolve against the target first) and takes the general path.

The source stays read-locked until the load transaction ends (it reads inside
it); on a source in WAL mode, writers are not blocked.

Progress is a heartbeat (elapsed time) from SQLite's progress handler while the
single statement runs, then the row count.
"""

from __future__ import annotations

from pathlib import Path

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.extract import Extraction
from dpone_core.executor.transfer.progress import Progress

__all__ = ["ATTACHED_SCHEMA", "attach", "detach", "fill_staging"]

ATTACHED_SCHEMA = "dpone_src"
#: SQLite virtual-machine steps between two progress-handler calls.
_HANDLER_STEPS = 1_000_000


def attach(target: Endpoint, source_path: str) -> None:
    """Attach the source file read-only (outside any transaction, as SQLite requires)."""
    uri = source_path if source_path.startswith("file:") else Path(source_path).as_uri()
    uri += "&mode=ro" if "?" in uri else "?mode=ro"
    target.sqlite.execute(f"ATTACH DATABASE ? AS {target.quote(ATTACHED_SCHEMA)}", (uri,))


def detach(target: Endpoint) -> None:
    conn = target.sqlite
    if conn.in_transaction:
        conn.execute("ROLLBACK")
    names = [str(row[1]) for row in conn.execute("PRAGMA database_list").fetchall()]
    if ATTACHED_SCHEMA in names:
        conn.execute(f"DETACH DATABASE {target.quote(ATTACHED_SCHEMA)}")


def fill_staging(
    target: Endpoint,
    extraction: Extraction,
    staging_sql: str,
    columns: list[str],
    progress: Progress,
) -> int:
    """``INSERT INTO staging SELECT ...`` on the target connection; returns the rows staged."""
    conn = target.sqlite

    def heartbeat() -> int:
        progress.heartbeat()
        return 0  # non-zero would interrupt the statement

    conn.set_progress_handler(heartbeat, _HANDLER_STEPS)
    try:
        rows = conn.execute(
            f"INSERT INTO {staging_sql} ({target.columns(columns)}) {extraction.select_sql}",
            extraction.params,
        ).rowcount
    finally:
        conn.set_progress_handler(None, 0)
    progress.add(rows)
    return rows
