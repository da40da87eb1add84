"""One load, start to finish: the transaction that makes a transfer exactly-once.

::

    connect target -> ledger has this load id committed? -> report it, load nothing
    connect source -> describe it (ManifestError for missing table/columns)
    choose the fill path (fill.choose_fill_path), attach what it needs
    BEGIN (target)                              dialect.serialize_loads (PostgreSQL:
                                                advisory lock per target table)
      claim the load id in _dpone_loads         duplicate -> someone committed it: report
      describe target, read the watermark
      create staging (SQLite: in a scratch file when the target exists),
      fill it from a source snapshot (rows + max cursor)
      -- crash point after_staging --
      publish staging -> target (strategy), count the target
      mark the ledger row committed (counts, watermark before/after), drop staging
    COMMIT                                      SQLite: delete the scratch file
    -- crash point after_publish --

Everything between ``BEGIN`` and ``COMMIT`` is one transaction of the target
database, so the target rows, the ledger row and the watermark appear together
or not at all; a ``kill -9`` anywhere before the commit leaves the target and
the ledger exactly as they were, and a resumed attempt (same run id and
generation, hence the same load id) that comes after the commit finds the
ledger row and does not publish again. On PostgreSQL, loads into the same
target table take turns (``pg_advisory_xact_lock``), so a watermark read at the
start of a load is still the latest one when it commits; on SQLite the write
transaction does the same.
"""

from __future__ import annotations

import time
from typing import Any

from dpone_core.errors import ManifestError
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.results import ProcessResult
from dpone_core.executor.transfer import sqlite_fast
from dpone_core.executor.transfer.connections import Endpoint, open_endpoint
from dpone_core.executor.transfer.crash import crash_point
from dpone_core.executor.transfer.errors import TransferFailed, describe_exception
from dpone_core.executor.transfer.extract import Window, build_extraction
from dpone_core.executor.transfer.fill import FillPath, choose_fill_path, fill_staging
from dpone_core.executor.transfer.introspect import (
    check_target_schema,
    describe_source,
    describe_target,
)
from dpone_core.executor.transfer.ledger import (
    LEDGER_TABLE,
    LedgerRow,
    claim,
    committed_watermark,
    ensure_ledger,
    find_load,
    is_duplicate_key,
    jsonable,
    load_id_for,
    mark_committed,
    max_watermark,
)
from dpone_core.executor.transfer.names import TableName
from dpone_core.executor.transfer.progress import Progress
from dpone_core.executor.transfer.scratch import (
    SCRATCH_SCHEMA,
    attach_scratch,
    detach_scratch,
    remove_leftover_scratch,
)
from dpone_core.executor.transfer.shapes import SourceShape, TargetShape
from dpone_core.executor.transfer.staging import (
    StagingPlan,
    create_staging,
    drop_staging,
    plan_staging,
)
from dpone_core.executor.transfer.strategies import (
    PublishCounts,
    drop_loaded_boundary_rows,
    publish,
)
from dpone_core.executor.transfer.typemap import rounding_reason
from dpone_core.manifest import TransferProcess

__all__ = ["run_transfer"]


def run_transfer(
    process: TransferProcess, ctx: ProcessContext, *, fast_paths: bool = True
) -> ProcessResult:
    """Run one transfer load; see the module docstring for the guarantees.

    Returns a passed result (also when this load id had already committed: then with
    the ledger's counts) or a failed one with a redacted, one-line error; raises
    :class:`~dpone_core.errors.ManifestError` when the databases contradict the
    manifest. ``fast_paths=False`` forces the general row-streaming path (benchmarks).
    """
    return _Load(process, ctx, fast_paths=fast_paths).run()


class _Load:
    def __init__(self, process: TransferProcess, ctx: ProcessContext, *, fast_paths: bool) -> None:
        self.process = process
        self.ctx = ctx
        self.fast_paths = fast_paths
        self.file = str(ctx.manifest_path)
        self.name = ctx.process_name
        self.started = time.monotonic()
        self.load_id = load_id_for(ctx.run_id, ctx.process_name, ctx.generation)
        self.mode: str = process.strategy.mode
        self.key = list(process.strategy.key)
        self.cursor = process.strategy.cursor
        self.upsert = bool(self.key) and self.mode in ("merge", "incremental")
        self.window = (
            Window(ctx.window_start, ctx.window_end)
            if (ctx.window_start or ctx.window_end)
            else None
        )
        self.target_name = TableName.parse(
            process.target.table, file=self.file, field=self._field("target.table")
        )
        self.ledger = self.target_name.sibling(LEDGER_TABLE)
        self.progress = Progress(ctx.progress, ctx.process_name)
        self.stage = "connecting"
        self.staged_rows = 0
        self.scratch_schema: str | None = None

    # ------------------------------------------------------------------ helpers

    def _field(self, path: str) -> str:
        return f"processes.{self.name}.{path}"

    def _error(self, path: str, expected: str) -> ManifestError:
        return ManifestError(self.file, self._field(path), expected)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _checkpoint(self, **extra: Any) -> dict[str, Any]:
        return {
            "load_id": self.load_id,
            "stage": self.stage,
            "staged_rows": self.staged_rows,
            "target": self.target_name.display,
            **extra,
        }

    # ------------------------------------------------------------------ entry

    def run(self) -> ProcessResult:
        self._validate_spec()
        target: Endpoint | None = None
        source: Endpoint | None = None
        try:
            target = self._open("target", self.process.target.connection, read_only=False)
            self.stage = "checking the ledger"
            check_target_schema(
                target, self.target_name, file=self.file, field_name=self._field("target.table")
            )
            remove_leftover_scratch(target)
            ensure_ledger(target, self.ledger)
            row = find_load(target, self.ledger, self.load_id)
            if row is not None and row.committed:
                return self._replayed(row)
            source = self._open("source", self.process.source.connection, read_only=True)
            return self._load(source, target)
        except ManifestError:
            raise
        except Exception as exc:
            return self._failed(exc)
        except BaseException:
            # A signal (SIGTERM/SIGINT turned into an exception) interrupted a statement,
            # perhaps one waiting for a lock: cancel it on the server and drop the
            # connections quietly; the orchestrator records the interruption.
            for endpoint in (source, target):
                if endpoint is not None:
                    endpoint.abandon()
            raise
        finally:
            for endpoint in (source, target):
                if endpoint is not None:
                    endpoint.close()

    def _open(self, role: str, connection: str, *, read_only: bool) -> Endpoint:
        return open_endpoint(
            role,
            self.name,
            connection,
            self.ctx.connections,
            manifest=self.file,
            base_dir=self.ctx.manifest_dir,
            read_only=read_only,
            lock_timeout=self.process.lock_timeout_seconds,
            statement_timeout=self.process.statement_timeout_seconds,
        )

    def _validate_spec(self) -> None:
        if self.mode == "merge" and not self.key:
            raise self._error("strategy.key", "mode 'merge' requires a non-empty key")
        if self.mode == "incremental" and not self.cursor:
            raise self._error("strategy.cursor", "mode 'incremental' requires a cursor column")
        if self.window is not None and not self.cursor:
            raise self._error(
                "strategy.cursor",
                "a cursor column: this run has a partition window "
                f"[{self.window.start}, {self.window.end}) to filter the source on",
            )

    def _validate_source(self, shape: SourceShape) -> None:
        names = shape.names
        listed = ", ".join(names)
        missing = [column for column in self.key if column not in names]
        if missing:
            raise self._error(
                "strategy.key",
                f"columns of the source; missing: {', '.join(missing)} (source columns: {listed})",
            )
        if self.cursor is not None and self.cursor not in names:
            raise self._error(
                "strategy.cursor",
                f"a column of the source; {self.cursor!r} does not exist "
                f"(source columns: {listed})",
            )

    def _validate_target(self, shape: TargetShape, source: SourceShape, target: Endpoint) -> None:
        insertable = {column.name for column in shape.insertable}
        missing = [name for name in source.names if name not in insertable]
        if missing:
            raise self._error(
                "target.table",
                f"a table with every source column; {self.target_name.display!r} lacks "
                f"{', '.join(missing)}",
            )
        for column in source.columns:
            declared = shape.declared(column.name)
            reason = rounding_reason(column.type, target.dialect.name, declared)
            if reason is not None:
                raise self._error(
                    "target.table",
                    f"columns that hold the source's values exactly; column {column.name!r} "
                    f"of {self.target_name.display!r} ({declared or 'no type'}) would round "
                    f"source values of type {column.type.declared}: {reason}, or drop the "
                    "table and let the transfer create it",
                )

    # ------------------------------------------------------------------ the load

    def _load(self, source: Endpoint, target: Endpoint) -> ProcessResult:
        self.stage = "reading the source"
        shape = describe_source(
            source,
            table=self.process.source.table,
            query=self.process.source.query,
            file=self.file,
            process=self.name,
        )
        self._validate_source(shape)
        path = choose_fill_path(
            source.dialect,
            target.dialect,
            same_database=source.same_database(target),
            table_source=shape.table is not None,
            source_is_file=source.is_file,
            fast_paths=self.fast_paths,
        )
        scratch: str | None = None
        try:
            if path is FillPath.ATTACH:
                # Outside any transaction, as SQLite requires.
                assert source.sqlite_path is not None
                sqlite_fast.attach(target, source.sqlite_path)
            scratch = attach_scratch(target, self.load_id)
            self.scratch_schema = SCRATCH_SCHEMA if scratch is not None else None
            return self._in_transaction(source, target, shape, path)
        finally:
            if scratch is not None:
                detach_scratch(target, scratch)
            if path is FillPath.ATTACH:
                sqlite_fast.detach(target)

    def _in_transaction(
        self, source: Endpoint, target: Endpoint, shape: SourceShape, path: FillPath
    ) -> ProcessResult:
        """Everything between BEGIN and COMMIT of the target (see the module docstring)."""
        replayed = self._claim(target)
        if replayed is not None:
            return replayed
        target_shape, watermark_before = self._describe_target(target, shape)
        plan = plan_staging(
            target,
            load_id=self.load_id,
            target=self.target_name,
            target_shape=target_shape,
            source=shape,
            upsert=self.upsert,
            scratch_schema=self.scratch_schema,
        )
        create_staging(target, plan)
        self.stage = "staging"
        staged, source_max = self._fill(source, target, shape, plan, path, watermark_before)
        self.staged_rows = staged
        crash_point("after_staging")
        if (
            self.mode == "incremental"
            and not self.key
            and self.cursor is not None
            and self.window is None
            and watermark_before is not None
            and target_shape is not None
        ):
            drop_loaded_boundary_rows(
                target, plan, self.target_name, target_shape, self.cursor, watermark_before
            )

        counts, final_rows = self._publish(target, shape, plan, target_shape, staged)
        watermark_after = (
            max_watermark([watermark_before, source_max]) if self.cursor is not None else None
        )
        mark_committed(
            target,
            self.ledger,
            load_id=self.load_id,
            extracted=staged,
            inserted=counts.inserted,
            updated=counts.updated,
            final_rows=final_rows,
            watermark_before=watermark_before,
            watermark_after=watermark_after,
        )
        if not plan.becomes_target and not plan.scratch:
            drop_staging(target, plan)
        self.stage = "committing"
        target.commit()
        self.stage = "committed"
        crash_point("after_publish")
        return self._passed(staged, counts, final_rows, watermark_before, watermark_after)

    def _claim(self, target: Endpoint) -> ProcessResult | None:
        """BEGIN and claim the load id; a result when another attempt already committed it."""
        self.stage = "claiming the load id"
        target.begin()
        target.dialect.serialize_loads(target, self.target_name)
        try:
            claim(
                target,
                self.ledger,
                load_id=self.load_id,
                run_id=self.ctx.run_id,
                process=self.name,
                generation=self.ctx.generation,
                target_table=self.target_name.display,
                mode=self.mode,
                cursor_column=self.cursor,
            )
        except Exception as exc:
            if not is_duplicate_key(exc):
                raise
            target.rollback()
            row = find_load(target, self.ledger, self.load_id)
            if row is not None and row.committed:
                return self._replayed(row)
            raise TransferFailed(
                f"load {self.load_id} is in the ledger but not committed; another attempt "
                "may be running"
            ) from None
        return None

    def _describe_target(
        self, target: Endpoint, shape: SourceShape
    ) -> tuple[TargetShape | None, Any]:
        """The target's definition (None: created by this load) and the committed watermark."""
        self.stage = "describing the target"
        target_shape = describe_target(
            target, self.target_name, file=self.file, field_name=self._field("target.table")
        )
        if target_shape is not None:
            self._validate_target(target_shape, shape, target)
        if self.cursor is None:
            return target_shape, None
        watermark = committed_watermark(
            target,
            self.ledger,
            process=self.name,
            target_table=self.target_name.display,
            cursor_column=self.cursor,
        )
        return target_shape, watermark

    def _fill(
        self,
        source: Endpoint,
        target: Endpoint,
        shape: SourceShape,
        plan: StagingPlan,
        path: FillPath,
        watermark: Any,
    ) -> tuple[int, Any]:
        """Fill staging along ``path``; returns (rows, max cursor)."""
        reader = target if path.reads_through_target else source
        extraction = build_extraction(
            reader,
            shape,
            plan.columns,
            cursor=self.cursor,
            watermark=watermark,
            incremental=self.mode == "incremental",
            window=self.window,
            target_dialect=target.dialect,
            schema=sqlite_fast.ATTACHED_SCHEMA if path is FillPath.ATTACH else None,
            null_cursor=self.process.strategy.null_cursor,
        )
        return fill_staging(
            path,
            reader,
            target,
            extraction,
            target.table(plan.table),
            plan.columns,
            batch_size=self.process.batch_size,
            progress=self.progress,
        )

    def _publish(
        self,
        target: Endpoint,
        shape: SourceShape,
        plan: StagingPlan,
        target_shape: TargetShape | None,
        staged: int,
    ) -> tuple[PublishCounts, int]:
        """Publish staging into the target; returns the counts and the target's row count."""
        self.stage = "publishing"
        self.progress.phase("publishing")
        counts = publish(
            target,
            mode=self.mode,
            key=self.key,
            cursor=self.cursor,
            window=self.window,
            staging=plan,
            target=self.target_name,
            target_shape=target_shape,
            staged_rows=staged,
            source_key_unique=bool(self.key) and frozenset(self.key) in shape.unique_keys,
        )
        if target_shape is None:
            return counts, counts.inserted  # the target was created by this load
        if counts.final_rows is not None:
            return counts, counts.final_rows
        final_rows = int(target.scalar(f"SELECT count(*) FROM {target.table(self.target_name)}"))
        return counts, final_rows

    # ------------------------------------------------------------------ outcomes

    def _passed(
        self,
        staged: int,
        counts: PublishCounts,
        final_rows: int,
        watermark_before: Any,
        watermark_after: Any,
    ) -> ProcessResult:
        duration = self._elapsed()
        rate = f"{staged / duration:,.0f} rows/s" if duration > 0 else "-"
        self.progress.finish(
            f"{self.mode} load {self.load_id} committed into {self.target_name.display}: "
            f"{staged:,} extracted, {counts.inserted:,} inserted, {counts.updated:,} updated, "
            f"{final_rows:,} in target ({duration:.2f}s, {rate})"
        )
        return ProcessResult(
            status="passed",
            extracted_rows=staged,
            inserted_rows=counts.inserted,
            updated_rows=counts.updated,
            final_rows=final_rows,
            duration_seconds=duration,
            load_id=self.load_id,
            watermark_before=jsonable(watermark_before),
            watermark_after=jsonable(watermark_after),
            checkpoint=self._checkpoint(),
        )

    def _timeout_hint(self, message: str) -> str:
        """Which manifest setting ended the wait, when a timeout did."""
        lock, statement = self.process.lock_timeout_seconds, self.process.statement_timeout_seconds
        if lock is not None and ("lock timeout" in message or "database is locked" in message):
            return f" (lock_timeout_seconds={lock:g})"
        if statement is not None and "statement timeout" in message:
            return f" (statement_timeout_seconds={statement:g})"
        return ""

    def _replayed(self, row: LedgerRow) -> ProcessResult:
        self.stage = "committed"
        self.staged_rows = row.extracted_rows
        self.progress.finish(
            f"load {self.load_id} (run {row.run_id}, generation {row.generation}) is already "
            f"committed in {self.target_name.display}; not publishing it again"
        )
        return ProcessResult(
            status="passed",
            extracted_rows=row.extracted_rows,
            inserted_rows=row.inserted_rows,
            updated_rows=row.updated_rows,
            final_rows=row.final_rows,
            duration_seconds=self._elapsed(),
            load_id=self.load_id,
            watermark_before=jsonable(row.watermark_before),
            watermark_after=jsonable(row.watermark_after),
            checkpoint=self._checkpoint(already_committed=True),
        )

    def _failed(self, exc: Exception) -> ProcessResult:
        if isinstance(exc, TransferFailed):
            message = str(exc)
        else:
            message = f"transfer failed while {self.stage}: {describe_exception(exc)}"
        message += self._timeout_hint(message)
        self.progress.finish(message)
        return ProcessResult(
            status="failed",
            duration_seconds=self._elapsed(),
            errors=[message],
            load_id=self.load_id,
            checkpoint=self._checkpoint(),
        )
