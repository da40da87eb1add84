"""Shapes of the two tables of a load: the source's columns and the target's definition.

Plain data, read from the catalogs by the dialects
(:mod:`~dpone_core.executor.transfer.dialects`) and checked against the manifest
by :mod:`~dpone_core.executor.transfer.introspect`. Kept apart from both so that
the dialect modules can build them without importing the connection layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.typemap import ColumnType

if TYPE_CHECKING:
    from dpone_core.executor.transfer.connections import Endpoint

__all__ = [
    "SUBQUERY_ALIAS",
    "SourceColumn",
    "SourceShape",
    "TargetColumn",
    "TargetShape",
    "source_from_clause",
]

SUBQUERY_ALIAS = "_dpone_q"


@dataclass(frozen=True)
class SourceColumn:
    name: str
    type: ColumnType


@dataclass(frozen=True)
class SourceShape:
    columns: list[SourceColumn]
    table: TableName | None
    query: str | None
    #: Column sets of the source table's unique indexes: a key among them needs no
    #: de-duplication before an upsert.
    unique_keys: list[frozenset[str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> SourceColumn:
        for column in self.columns:
            if column.name == name:
                return column
        raise KeyError(name)


@dataclass(frozen=True)
class TargetColumn:
    name: str
    declared: str
    not_null: bool = False
    default: str | None = None
    generated: bool = False
    primary_key: int = 0


@dataclass(frozen=True)
class TargetShape:
    table: TableName
    columns: list[TargetColumn]
    #: Column sets of the unique, non-partial indexes/constraints (ON CONFLICT arbiters).
    unique_keys: list[frozenset[str]] = field(default_factory=list)
    #: SQLite: the INTEGER PRIMARY KEY column (an alias of the rowid), if any.
    integer_pk: str | None = None
    has_indexes: bool = False

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    @property
    def insertable(self) -> list[TargetColumn]:
        return [column for column in self.columns if not column.generated]

    def declared(self, name: str) -> str:
        for column in self.columns:
            if column.name == name:
                return column.declared
        raise KeyError(name)

    def has_unique_key(self, key: Sequence[str]) -> bool:
        return frozenset(key) in self.unique_keys


def source_from_clause(db: Endpoint, shape: SourceShape, *, schema: str | None = None) -> str:
    """``FROM`` target of the extraction: the table (optionally in another schema) or the query.

    The query text is escaped for the driver's parameter style (psycopg, which always
    receives a parameter tuple, needs ``%`` doubled).
    """
    if shape.table is not None:
        table = shape.table if schema is None else TableName(schema, shape.table.name)
        return db.table(table)
    assert shape.query is not None
    return f"(\n{db.dialect.escape_query(shape.query)}\n) AS {SUBQUERY_ALIAS}"
