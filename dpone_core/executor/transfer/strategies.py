"""Publishing a filled staging table into the target, per strategy (inside the load transaction).

======================  ==================================================================
strategy                publish
======================  ==================================================================
any, target missing     the staging table is renamed to the target (rows written once);
                        merge keys get a unique index ``<table>_dpone_key``
``replace``             ``DELETE FROM target`` (only the window's slice when the run has a
                        window) then ``INSERT ... SELECT`` from staging, in the one load
                        transaction: concurrent readers see the old rows until the commit,
                        then the new ones -- never an empty or partial table.
                        PostgreSQL uses ``DELETE``, not ``TRUNCATE``, because ``TRUNCATE``
                        is not MVCC-safe (a ``REPEATABLE READ`` reader would see it empty);
                        it keeps the table, its grants, indexes, views and triggers.
``append``              ``INSERT ... SELECT`` (SQLite: ``SELECT *`` from a clone, which
                        lets SQLite copy pages without decoding rows)
``merge``               staging is de-duplicated on the key (the row extracted last wins;
                        rows with a NULL key are kept and always inserted; skipped when a
                        unique index of the source table guarantees it), then a native
                        upsert: ``INSERT ... ON CONFLICT (key) DO UPDATE SET ...`` that
                        only touches rows whose values differ. Needs a unique index on
                        exactly the key columns (created with the target); an existing
                        target without one is merged with ``UPDATE ... FROM`` +
                        ``INSERT ... WHERE NOT EXISTS`` instead.
``incremental``         as ``merge`` when a key is given, else as ``append``; staging only
                        holds rows at or past the watermark (or in the window). Without
                        a key, staged rows at the watermark that equal a target row at
                        the watermark in every column are dropped first
                        (:func:`drop_loaded_boundary_rows`): the inclusive watermark
                        re-reads them, and they were loaded before.
======================  ==================================================================

Counts: ``inserted`` are new target rows; ``updated`` are existing rows whose
values changed. For native upserts, ``inserted`` is the growth of the target's
row count across the upsert, measured under the load's write lock (SQLite's
write transaction; PostgreSQL ``LOCK TABLE ... IN SHARE ROW EXCLUSIVE MODE``,
which blocks other writers of the target for the publish only, never
readers), so the split is exact.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dpone_core.executor.transfer.connections import Endpoint
from dpone_core.executor.transfer.extract import Window
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.shapes import TargetShape
from dpone_core.executor.transfer.staging import StagingPlan

__all__ = ["PublishCounts", "drop_loaded_boundary_rows", "key_index_name", "publish"]

_PG_IDENTIFIER_MAX = 63


@dataclass(frozen=True)
class PublishCounts:
    inserted: int
    updated: int
    deleted: int = 0
    #: Target row count after the publish, when the publish had to count anyway.
    final_rows: int | None = None


def key_index_name(target: TableName) -> str:
    name = f"{target.name}_dpone_key"
    if len(name) <= _PG_IDENTIFIER_MAX:
        return name
    digest = hashlib.sha256(target.display.encode("utf-8")).hexdigest()[:10]
    return f"{target.name[:40]}_{digest}_dpone_key"


def publish(
    db: Endpoint,
    *,
    mode: str,
    key: Sequence[str],
    cursor: str | None,
    window: Window | None,
    staging: StagingPlan,
    target: TableName,
    target_shape: TargetShape | None,
    staged_rows: int,
    source_key_unique: bool = False,
) -> PublishCounts:
    """Publish ``staging`` into ``target`` (``source_key_unique``: no duplicate keys possible)."""
    upsert = bool(key) and mode in ("merge", "incremental")
    if upsert and not source_key_unique:
        staged_rows -= _deduplicate(db, staging, key)
    if target_shape is None:
        return _rename_into_place(db, staging, target, key if upsert else (), staged_rows)
    if mode == "replace":
        deleted = _delete_for_replace(db, target, cursor, window)
        return PublishCounts(inserted=_insert_all(db, staging, target), updated=0, deleted=deleted)
    if not upsert:
        return PublishCounts(inserted=_insert_all(db, staging, target), updated=0)
    if target_shape.has_unique_key(key):
        return _native_upsert(db, staging, target, target_shape, key)
    return _update_then_insert(db, staging, target, target_shape, key)


def drop_loaded_boundary_rows(
    db: Endpoint,
    staging: StagingPlan,
    target: TableName,
    shape: TargetShape,
    cursor: str,
    watermark: Any,
) -> int:
    """Keyless incremental: drop staged rows at the watermark that the target already has.

    A staged row whose cursor equals the watermark and which equals, column for column
    (NULLs equal), a target row with that cursor was loaded by an earlier load; a row
    that differs arrived later and stays. Returns the rows dropped.
    """
    q_cursor = db.quote(cursor)
    same = " AND ".join(
        f"NOT ({_comparable(db, shape, c, 't')} {db.dialect.distinct_operator} "
        f"{_comparable(db, shape, c, 's')})"
        for c in staging.columns
    )
    return max(
        db.run(
            f"DELETE FROM {db.table(staging.table)} AS s WHERE s.{q_cursor} = {db.ph} AND "
            f"EXISTS (SELECT 1 FROM {db.table(target)} AS t WHERE t.{q_cursor} = {db.ph} "
            f"AND {same})",
            (watermark, watermark),
        ),
        0,
    )


def _not_null(db: Endpoint, key: Sequence[str], alias: str = "") -> str:
    prefix = f"{alias}." if alias else ""
    return " AND ".join(f"{prefix}{db.quote(k)} IS NOT NULL" for k in key)


def _deduplicate(db: Endpoint, staging: StagingPlan, key: Sequence[str]) -> int:
    """Keep the last extracted row per non-NULL key (an upsert must see each key once).

    Returns the number of rows removed."""
    stg = db.table(staging.table)
    keys = db.columns(key)
    duplicated = db.fetchone(
        f"SELECT 1 FROM {stg} WHERE {_not_null(db, key)} GROUP BY {keys} HAVING count(*) > 1 "
        "LIMIT 1"
    )
    if duplicated is None:
        return 0
    return db.run(db.dialect.deduplicate_sql(stg, keys, _not_null(db, key)))


def _create_key_index(db: Endpoint, target: TableName, key: Sequence[str]) -> None:
    db.run(db.dialect.key_index_sql(key_index_name(target), target, db.columns(key)))


def _rename_into_place(
    db: Endpoint, staging: StagingPlan, target: TableName, key: Sequence[str], rows: int
) -> PublishCounts:
    try:
        with db.savepoint("dpone_rename"):
            db.run(f"ALTER TABLE {db.table(staging.table)} RENAME TO {db.quote(target.name)}")
    except Exception:
        # SQLite refuses the rename when another view or trigger of the schema does not
        # parse; build the target the long way then.
        db.run(f"CREATE TABLE {db.table(target)} ({', '.join(staging.column_ddl)})")
        db.run(
            f"INSERT INTO {db.table(target)} ({db.columns(staging.columns)}) "
            f"SELECT {db.columns(staging.columns)} FROM {db.table(staging.table)}"
        )
        db.run(f"DROP TABLE {db.table(staging.table)}")
    if key:
        _create_key_index(db, target, key)
    return PublishCounts(inserted=rows, updated=0)


def _delete_for_replace(
    db: Endpoint, target: TableName, cursor: str | None, window: Window | None
) -> int:
    conditions: list[str] = []
    params: list[str] = []
    if cursor is not None and window is not None:
        if window.start:
            conditions.append(f"{db.quote(cursor)} >= {db.ph}")
            params.append(window.start)
        if window.end:
            conditions.append(f"{db.quote(cursor)} < {db.ph}")
            params.append(window.end)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return max(db.run(f"DELETE FROM {db.table(target)}{where}", params), 0)


def _insert_all(db: Endpoint, staging: StagingPlan, target: TableName) -> int:
    if staging.clone:
        sql = f"INSERT INTO {db.table(target)} SELECT * FROM {db.table(staging.table)}"
    else:
        columns = db.columns(staging.columns)
        sql = (
            f"INSERT INTO {db.table(target)} ({columns}) "
            f"SELECT {columns} FROM {db.table(staging.table)}"
        )
    return max(db.run(sql), 0)


def _comparable(db: Endpoint, shape: TargetShape, column: str, alias: str) -> str:
    return db.dialect.comparable(f"{alias}.{db.quote(column)}", shape.declared(column))


def _changed(db: Endpoint, shape: TargetShape, columns: Sequence[str], old: str, new: str) -> str:
    """SQL that is true when any of ``columns`` differs between aliases ``old`` and ``new``."""
    left = ", ".join(_comparable(db, shape, c, old) for c in columns)
    right = ", ".join(_comparable(db, shape, c, new) for c in columns)
    operator = db.dialect.distinct_operator
    if len(columns) == 1:
        return f"{left} {operator} {right}"
    return f"({left}) {operator} ({right})"


def _count(db: Endpoint, table: TableName) -> int:
    return int(db.scalar(f"SELECT count(*) FROM {db.table(table)}") or 0)


def _begin_upsert(db: Endpoint, target: TableName) -> None:
    """Keep other writers off the target; the dialect's settings for the upsert."""
    db.dialect.lock_writers_out(db, db.table(target))
    db.dialect.prepare_upsert(db, target)


def _native_upsert(
    db: Endpoint,
    staging: StagingPlan,
    target: TableName,
    shape: TargetShape,
    key: Sequence[str],
) -> PublishCounts:
    _begin_upsert(db, target)
    before = _count(db, target)
    columns = staging.columns
    others = [c for c in columns if c not in key]
    q_columns = db.columns(columns)
    table = db.table(target)
    head, old, excluded = db.dialect.upsert_head(table, q_columns, db.table(staging.table), target)
    conflict = f" ON CONFLICT ({db.columns(key)}) DO "
    if others:
        assignments = ", ".join(f"{db.quote(c)} = {excluded}.{db.quote(c)}" for c in others)
        action = f"UPDATE SET {assignments} WHERE {_changed(db, shape, others, old, excluded)}"
    else:
        action = "NOTHING"
    changed = max(db.run(head + conflict + action), 0)
    # No other writer can touch the target meanwhile, so growth is exactly the new keys.
    after = _count(db, target)
    inserted = after - before
    return PublishCounts(inserted=inserted, updated=max(changed - inserted, 0), final_rows=after)


def _update_then_insert(
    db: Endpoint,
    staging: StagingPlan,
    target: TableName,
    shape: TargetShape,
    key: Sequence[str],
) -> PublishCounts:
    _begin_upsert(db, target)
    columns = staging.columns
    others = [c for c in columns if c not in key]
    table = db.table(target)
    stg = db.table(staging.table)
    updated = 0
    if others:
        head, old = db.dialect.update_head(table, target)
        assignments = ", ".join(f"{db.quote(c)} = s.{db.quote(c)}" for c in others)
        match = " AND ".join(f"{old}.{db.quote(k)} = s.{db.quote(k)}" for k in key)
        updated = max(
            db.run(
                f"{head}{assignments} FROM {stg} AS s WHERE {match} AND "
                f"{_changed(db, shape, others, old, 's')}"
            ),
            0,
        )
    match = " AND ".join(f"t.{db.quote(k)} = s.{db.quote(k)}" for k in key)
    q_columns = ", ".join(f"s.{db.quote(c)}" for c in columns)
    inserted = max(
        db.run(
            f"INSERT INTO {table} ({db.columns(columns)}) SELECT {q_columns} FROM {stg} AS s "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} AS t WHERE {match})"
        ),
        0,
    )
    return PublishCounts(inserted=inserted, updated=updated)
