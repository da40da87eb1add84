"""Staging tables: where a load's rows land before they are published.

The staging table of a load is ``_dpone_stg_<24 hex digits of the load id>`` in
the target table's schema -- for an existing SQLite target, in a scratch file
next to it (:mod:`~dpone_core.executor.transfer.scratch`) -- so a load always
finds its own staging table again.
It is created, filled, published and dropped inside one transaction of the
target database; a crash at any point rolls all of it back (SQLite's journal,
PostgreSQL's transaction), so a staging table is never left behind half-filled
and never published twice. A leftover with the same name (from an engine that
crashed between statements of a non-transactional DDL, or a manual experiment)
is dropped before the load starts.

Shape of the staging table:

* **Target missing** -- the staging table is created with the target's future
  definition (types from :mod:`~dpone_core.executor.transfer.typemap`) and, once
  filled, *renamed* into place: the first load writes its rows once.
* **SQLite target, same columns** (append, replace, keyless incremental) -- a
  column-for-column clone of the target (declared types, ``NOT NULL``,
  defaults, ``INTEGER PRIMARY KEY``), so that ``INSERT INTO target SELECT *
  FROM staging`` runs SQLite's transfer optimisation (pages copied without
  decoding rows) whenever the target's indexes allow it.
* **Otherwise** -- the source's columns with the target's declared types.

On PostgreSQL a staging table that will not become the target is ``UNLOGGED``:
it never needs to survive a server crash (the transaction that created it would
not either), so filling it writes no WAL.
"""

from __future__ import annotations

from dataclasses import dataclass

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import SourceShape, TargetShape

__all__ = ["StagingPlan", "create_staging", "drop_staging", "plan_staging", "staging_name"]

STAGING_PREFIX = "_dpone_stg_"


def staging_name(load_id: str) -> str:
    return STAGING_PREFIX + load_id.removeprefix("ld-")[:24]


@dataclass(frozen=True)
class StagingPlan:
    table: TableName
    #: Columns in staging order; the extraction selects them in this order.
    columns: list[str]
    column_ddl: list[str]
    #: Same columns, types and constraints as the target (``SELECT *`` publish); only
    #: where the dialect ``clones_staging`` (SQLite).
    clone: bool
    #: The target does not exist: the staging table is renamed into place.
    becomes_target: bool
    #: SQLite: the staging table lives in the scratch file (deleted, never dropped).
    scratch: bool = False

    def ddl(self, db: Endpoint) -> str:
        body = ", ".join(self.column_ddl)
        return db.dialect.staging_ddl(
            db.table(self.table), body, becomes_target=self.becomes_target
        )


def _column(db: Endpoint, name: str, declared: str) -> str:
    return f"{db.quote(name)} {declared}".rstrip()


def plan_staging(
    db: Endpoint,
    *,
    load_id: str,
    target: TableName,
    target_shape: TargetShape | None,
    source: SourceShape,
    upsert: bool,
    scratch_schema: str | None = None,
) -> StagingPlan:
    """Shape and place of the staging table (``scratch_schema``: SQLite scratch database)."""
    table = target.sibling(staging_name(load_id))
    scratch = target_shape is not None and scratch_schema is not None
    if scratch:
        assert scratch_schema is not None
        table = TableName(scratch_schema, table.name)
    if target_shape is None:
        return StagingPlan(
            table=table,
            columns=source.names,
            column_ddl=[
                _column(db, column.name, db.dialect.target_type(column.type))
                for column in source.columns
            ],
            clone=False,
            becomes_target=True,
        )
    generated = any(column.generated for column in target_shape.columns)
    same_columns = set(source.names) == {column.name for column in target_shape.columns}
    if db.dialect.clones_staging and not upsert and same_columns and not generated:
        ddl: list[str] = []
        for column in target_shape.columns:
            parts = [_column(db, column.name, column.declared)]
            if column.name == target_shape.integer_pk:
                parts.append("PRIMARY KEY")
            if column.not_null:
                parts.append("NOT NULL")
            if column.default is not None:
                parts.append(f"DEFAULT {column.default}")
            ddl.append(" ".join(parts))
        return StagingPlan(
            table=table,
            columns=target_shape.names,
            column_ddl=ddl,
            clone=True,
            becomes_target=False,
            scratch=scratch,
        )
    return StagingPlan(
        table=table,
        columns=source.names,
        column_ddl=[_column(db, name, target_shape.declared(name)) for name in source.names],
        clone=False,
        becomes_target=False,
        scratch=scratch,
    )


def create_staging(db: Endpoint, plan: StagingPlan) -> None:
    """(Re)create the staging table inside the open load transaction."""
    drop_staging(db, plan)
    db.run(plan.ddl(db))


def drop_staging(db: Endpoint, plan: StagingPlan) -> None:
    db.run(f"DROP TABLE IF EXISTS {db.table(plan.table)}")
