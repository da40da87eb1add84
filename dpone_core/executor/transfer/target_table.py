"""What a transfer's target table is, for catalogs: its full name and its real columns.

Dagster shows them as ``dagster/table_name`` and ``dagster/column_schema``; any
catalog can ask the same. Read-only, through the engine's own connection and
catalog code, after a load: the columns are the table's as the database has
them (types as declared), not what the manifest hoped for.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from dpone_core.manifest import (
    LoadedManifest,
    TransferProcess,
    load_manifest,
    resolved_connection,
)
from dpone_core.redact import redact

__all__ = ["TargetColumnInfo", "TargetTable", "declared_table_name", "target_table"]


@dataclass(frozen=True)
class TargetColumnInfo:
    name: str
    type: str
    nullable: bool


@dataclass(frozen=True)
class TargetTable:
    """``qualified_name`` is ``database.schema.table``; empty ``columns`` when unreadable."""

    qualified_name: str | None
    columns: list[TargetColumnInfo] = field(default_factory=list)
    #: Why nothing could be read (None when it could).
    problem: str | None = None


def target_table(manifest_path: str, selector: str) -> TargetTable:
    """The target of ``selector``'s transfer; never raises for a database problem."""
    from dpone_core.executor.transfer.connections import open_target_for_reading
    from dpone_core.executor.transfer.introspect import describe_target
    from dpone_core.executor.transfer.names import TableName

    loaded = load_manifest(manifest_path)
    _, process = loaded.select(selector)
    if not isinstance(process, TransferProcess):
        return TargetTable(None, problem="not a transfer: no target table")
    where = f"processes.{selector}.target.table"
    name = TableName.parse(process.target.table, file=str(loaded.path), field=where)
    try:
        target = open_target_for_reading(loaded, selector, process.target.connection)
    except Exception as exc:
        return TargetTable(None, problem=redact(f"cannot open the target: {exc}"))
    try:
        qualified = target.dialect.qualified_name(target, name)
        shape = describe_target(target, name, file=str(loaded.path), field_name=where)
    except Exception as exc:
        return TargetTable(None, problem=redact(f"cannot read the target {name.display}: {exc}"))
    finally:
        target.close()
    if shape is None:
        return TargetTable(qualified, problem=f"the target {name.display} does not exist")
    columns = [
        TargetColumnInfo(name=c.name, type=c.declared, nullable=not c.not_null)
        for c in shape.columns
    ]
    return TargetTable(qualified, columns)


def declared_table_name(loaded: LoadedManifest, process: TransferProcess) -> str:
    """``database.schema.table`` from the manifest alone, without connecting.

    The database comes from the connection URL (a SQLite file's name; PostgreSQL's
    database), the schema from the table or the dialect's default (``main``,
    ``public``); after a load, :func:`target_table` says what the database says.
    Never contains a password: only the URL's database part is read.
    """
    url_text = resolved_connection(loaded, process.target.connection)
    table = process.target.table
    schema, _, name = table.rpartition(".")
    database = _database_of(url_text)
    if database is None:
        return table
    backend, database_name = database
    if backend == "sqlite":
        return f"{database_name}.{schema or 'main'}.{name}"
    return f"{database_name}.{schema or 'public'}.{name}"


@functools.lru_cache(maxsize=1024)
def _database_of(url_text: str) -> tuple[str, str | None] | None:
    """``(backend, database)`` of a connection URL; parsed once per URL, because a
    Dagster code server names the target table of every process of every manifest."""
    from pathlib import Path

    from sqlalchemy.engine import make_url

    try:
        url = make_url(url_text)
    except Exception:
        return None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return backend, Path(url.database).stem if url.database else "memory"
    return backend, url.database
