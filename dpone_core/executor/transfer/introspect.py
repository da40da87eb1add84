"""What the databases say about the source and the target, checked against the manifest.

Problems the user must fix (a missing source table, a query that does not run,
a key or cursor column that does not exist, a target table without the source's
columns) are raised as :class:`~dpone_core.errors.ManifestError` naming the field.
The catalog reads themselves are the dialects' (``dialects/*_catalog.py``); this
module parses the manifest's side of the question and checks the answers.
"""

from __future__ import annotations

from dpone_core.errors import ManifestError
from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import (
    SourceColumn,
    SourceShape,
    TargetColumn,
    TargetShape,
    source_from_clause,
)

__all__ = [
    "SourceColumn",
    "SourceShape",
    "TargetColumn",
    "TargetShape",
    "check_target_schema",
    "describe_source",
    "describe_target",
    "source_from_clause",
]


def _clean_query(query: str) -> str:
    text = query.strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text


def _check_unique(names: list[str], file: str, field_name: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ManifestError(
                file,
                field_name,
                f"expected distinct column names; {name!r} appears more than once "
                "(alias the columns)",
            )
        seen.add(name)


def _requested_source(
    table: str | None, query: str | None, *, file: str, process: str
) -> tuple[SourceShape, str]:
    """The source as the manifest names it (no columns yet) and the field that names it."""
    if table is not None:
        field_name = f"processes.{process}.source.table"
        name = TableName.parse(table, file=file, field=field_name)
        return SourceShape(columns=[], table=name, query=None), field_name
    field_name = f"processes.{process}.source.query"
    text = _clean_query(query or "")
    if not text:
        raise ManifestError(file, field_name, "expected a SELECT statement (got nothing)")
    return SourceShape(columns=[], table=None, query=text), field_name


def describe_source(
    db: Endpoint, *, table: str | None, query: str | None, file: str, process: str
) -> SourceShape:
    """Columns and types of the source table or query; ManifestError if it does not exist."""
    shape, field_name = _requested_source(table, query, file=file, process=process)
    columns, unique_keys = db.dialect.describe_source(db, shape, file=file, field_name=field_name)
    _check_unique([column.name for column in columns], file, field_name)
    if not columns:
        raise ManifestError(file, field_name, "expected a source with at least one column")
    return SourceShape(
        columns=columns, table=shape.table, query=shape.query, unique_keys=unique_keys
    )


def check_target_schema(db: Endpoint, name: TableName, *, file: str, field_name: str) -> None:
    """The target's schema must exist (the ledger and staging tables are created in it)."""
    db.dialect.check_target_schema(db, name, file=file, field_name=field_name)


def describe_target(
    db: Endpoint, name: TableName, *, file: str, field_name: str
) -> TargetShape | None:
    """The target table's columns and unique keys, or None when it does not exist yet."""
    return db.dialect.describe_target(db, name, file=file, field_name=field_name)
