"""The ``dpone/*`` contract: every key dpone puts on Dagster objects, defined once.

Three kinds of metadata, each with its table of keys (docs/dagster.md shows the
same tables; a test keeps them in step):

* :data:`METADATA_KEYS` -- what a materialization (and every ``dagster.Failure``)
  carries: :func:`report_metadata`, :func:`failures_metadata`;
* :data:`DEFINITION_METADATA_KEYS` -- what an asset's spec carries:
  :func:`definition_metadata` (the translator's default) and
  :func:`runtime_metadata` (what the resource reads at run time, read back by
  :func:`read_runtime_metadata`);
* :data:`CHECK_METADATA_KEYS` -- what the ``dpone_committed`` check reports:
  :func:`check_metadata`.

Plus the run tag :data:`RESUME_POLICY_TAG`. No other module spells a ``dpone/``
key: they import the constants and builders from here. The materialization keys
live in :mod:`dpone_core.metadata_keys` (dpone launched by Dagster Pipes writes them
too) and are re-exported here.

Every key lives under ``dpone/`` (plus Dagster's own ``dagster/row_count`` and
``dagster/table_name``). Everything that came from the engine is redacted
already; it passes through :func:`dpone_core.redact.redact` once more here,
because metadata is stored in Dagster's event log for good.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import dagster as dg

from dpone_core.executor.transfer.target_table import TargetTable, declared_table_name
from dpone_core.job_state import SchedulerIdentity
from dpone_core.manifest import PartitionsSpec, TransferProcess
from dpone_core.metadata_keys import (
    ATTEMPT,
    ATTEMPT_REPORT_JSON,
    BLOCKER_DETAILS,
    BLOCKERS,
    COLUMN_SCHEMA,
    DECISION,
    DURATION_SECONDS,
    ERRORS,
    EXIT_CODE,
    EXTRACTED_ROWS,
    FAILURES,
    FINAL_ROWS,
    INSERTED_ROWS,
    INVOCATION_REPORT_JSON,
    JOB_STATE_FILE,
    LOAD_ID,
    LOCK_KEY,
    METADATA_KEYS,
    OUTPUT_DIR,
    PARTITION_KEY,
    PARTITION_ROW_COUNT,
    REPORT,
    REPORT_JSON,
    REPORT_MD,
    RESUME_POLICY,
    REUSED,
    ROW_COUNT,
    RUN_ID,
    SCHEDULER,
    STATUS,
    TABLE_NAME,
    TRANSITIONS,
    TRIES,
    UPDATED_ROWS,
    WATERMARK_AFTER,
    WATERMARK_BEFORE,
    WINDOW_END,
    WINDOW_START,
)
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.process import DponeProcess

__all__ = [
    "CHECK_METADATA_KEYS",
    "DEFINITION_METADATA_KEYS",
    "METADATA_KEYS",
    "RESUME_POLICY_TAG",
    "RuntimeMetadata",
    "check_metadata",
    "definition_metadata",
    "failures_metadata",
    "metadata_value",
    "read_runtime_metadata",
    "redact_tree",
    "report_metadata",
    "run_id_of",
    "runtime_metadata",
]

#: Run tag that overrides the resource's resume policy for one run (or backfill).
RESUME_POLICY_TAG: Final = "dpone/resume_policy"

# -- definition (asset spec) metadata --------------------------------------------------
MANIFEST: Final = "dpone/manifest"
MANIFEST_SHA256: Final = "dpone/manifest_sha256"
SELECTOR: Final = "dpone/selector"
KIND: Final = "dpone/kind"
RUN_ID_PREFIX: Final = "dpone/run_id_prefix"
STRATEGY: Final = "dpone/strategy"
SOURCE: Final = "dpone/source"
TARGET: Final = "dpone/target"
CONCURRENCY_KEY: Final = "dpone/concurrency_key"
PARTITIONS: Final = "dpone/partitions"
CODE_REFERENCES: Final = "dagster/code_references"

#: Every key of an asset's definition metadata, with its meaning.
DEFINITION_METADATA_KEYS: dict[str, str] = {
    MANIFEST: "path of the manifest (read at run time)",
    MANIFEST_SHA256: "the manifest file's hash when the code location loaded it",
    SELECTOR: "the process's selector (read at run time)",
    KIND: "transfer or command (read at run time)",
    RUN_ID_PREFIX: "the start of every run id (read at run time)",
    STRATEGY: "the transfer's strategy (transfers)",
    SOURCE: "the source: connection.table, or connection (query) (transfers)",
    TARGET: "the target: connection.table (transfers)",
    TABLE_NAME: "the target as database.schema.table, from the manifest (transfers)",
    CONCURRENCY_KEY: "the process's concurrency key, its op's pool (when set)",
    PARTITIONS: "the partitions, e.g. daily from 2026-11-01 (partitioned; read at run time)",
    CODE_REFERENCES: "the manifest file and the line of the process (the UI links to it)",
}

# -- asset check metadata --------------------------------------------------------------
JOB_STATE_STATUS: Final = "dpone/job_state_status"
LEDGER_STATUS: Final = "dpone/ledger_status"

#: Every key the ``dpone_committed`` check's result may carry, with its meaning.
CHECK_METADATA_KEYS: dict[str, str] = {
    RUN_ID: "the run id checked",
    JOB_STATE_FILE: "path of <run id>.job_state.json",
    JOB_STATE_STATUS: "the job state's status, or missing",
    LOAD_ID: "the load id of the committed run (transfers)",
    LEDGER_STATUS: "the target ledger's status of that load: committed, or missing (transfers)",
}


# -- values --------------------------------------------------------------------------
def _text(value: object) -> dg.TextMetadataValue:
    return dg.MetadataValue.text(redact(str(value)))


def _scalar(value: object) -> dg.MetadataValue[Any]:
    """A watermark (any JSON scalar) as the closest metadata type."""
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, str):
        return _text(value)
    return _text(json.dumps(redact_tree(value)))


def redact_tree(value: Any) -> Any:
    """``value`` (JSON-like) with every string redacted, keys included."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact(str(k)): redact_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


def _json(value: Any) -> dg.JsonMetadataValue:
    """JSON metadata whose every string went through the redactor."""
    return dg.MetadataValue.json(redact_tree(value))


def _path(value: str) -> dg.PathMetadataValue:
    return dg.MetadataValue.path(redact(value))


def metadata_value(entry: Any) -> Any:
    """A metadata entry's plain value (specs may hold raw values or ``MetadataValue``s)."""
    if isinstance(entry, dg.MetadataValue):
        return entry.value
    return entry


# -- materialization metadata ------------------------------------------------------------
def report_metadata(
    report: OrchestratedRunReport,
    *,
    window: PartitionWindow | None = None,
    reused: bool = False,
    table: TargetTable | None = None,
) -> dict[str, dg.MetadataValue[Any]]:
    """The ``dpone/`` metadata of one orchestrated run (see :data:`METADATA_KEYS`).

    Ordered for reading: what happened (status, run id, rows, decision) first, the
    long history (transitions, the Markdown report) last. ``table`` adds the target's
    full name and real columns (a committed transfer).
    """
    md: dict[str, dg.MetadataValue[Any]] = {
        STATUS: _text(report.status),
        RUN_ID: _text(report.run_id),
    }
    result: Mapping[str, Any] = (report.run_result or {}).get("result") or {}
    if report.run_result is not None:  # None when the process did not run (refused)
        md.update(_rows_metadata(result, partitioned=window is not None))
    md[DECISION] = _text(report.decision)
    md[BLOCKERS] = _json(list(report.blockers))
    scheduler = (report.job_state or {}).get("scheduler")
    if scheduler:
        md[SCHEDULER] = _text(SchedulerIdentity.model_validate(scheduler).describe())
    if table is not None:
        md.update(_table_metadata(table))
    if window is not None:
        md[PARTITION_KEY] = _text(window.key)
        md[WINDOW_START] = _text(window.start)
        md[WINDOW_END] = _text(window.end)
    state = report.job_state
    if state is not None:
        md[ATTEMPT] = dg.MetadataValue.int(int(state.get("attempt", 0)))
    md[LOCK_KEY] = _text(report.lock_key)
    md[RESUME_POLICY] = _text(report.resume_policy)
    md[DURATION_SECONDS] = dg.MetadataValue.float(round(float(report.duration_seconds), 3))
    md[REUSED] = dg.MetadataValue.bool(reused)
    if report.run_result is not None:
        md.update(_run_result_metadata(report.run_result))
    md[BLOCKER_DETAILS] = _json([d.model_dump(mode="json") for d in report.blocker_details])
    md.update(_evidence_metadata(report.evidence))
    md[JOB_STATE_FILE] = _path(report.job_state_path)
    md[OUTPUT_DIR] = _path(report.output_dir)
    if state is not None:
        md[TRANSITIONS] = _json(state.get("transitions") or [])
    md[REPORT] = dg.MetadataValue.md(redact(report.to_markdown()))
    return md


def _rows_metadata(result: Mapping[str, Any], *, partitioned: bool) -> dict[str, Any]:
    """Rows read and written; the table's total, or, for a partition, the window's rows."""
    md: dict[str, dg.MetadataValue[Any]] = {
        EXTRACTED_ROWS: dg.MetadataValue.int(int(result.get("extracted_rows") or 0)),
        INSERTED_ROWS: dg.MetadataValue.int(int(result.get("inserted_rows") or 0)),
        UPDATED_ROWS: dg.MetadataValue.int(int(result.get("updated_rows") or 0)),
    }
    final_rows = result.get("final_rows")
    if final_rows is not None:
        md[FINAL_ROWS] = dg.MetadataValue.int(int(final_rows))
        if partitioned:
            # Dagster reads dagster/row_count of a partition as that partition's rows: the
            # whole table's count would be wrong there.
            md[PARTITION_ROW_COUNT] = dg.MetadataValue.int(int(result.get("extracted_rows") or 0))
        else:
            md[ROW_COUNT] = dg.MetadataValue.int(int(final_rows))
    return md


def _table_metadata(table: TargetTable) -> dict[str, dg.MetadataValue[Any]]:
    md: dict[str, dg.MetadataValue[Any]] = {}
    if table.qualified_name:
        md[TABLE_NAME] = _text(table.qualified_name)
    if table.columns:
        md[COLUMN_SCHEMA] = dg.MetadataValue.table_schema(
            dg.TableSchema(
                columns=[
                    dg.TableColumn(
                        name=c.name,
                        type=c.type or "unknown",
                        constraints=dg.TableColumnConstraints(nullable=c.nullable),
                    )
                    for c in table.columns
                ]
            )
        )
    return md


def _run_result_metadata(run_result: Mapping[str, Any]) -> dict[str, dg.MetadataValue[Any]]:
    """Tries, errors, load id, watermarks and exit code of the run that ran."""
    result: Mapping[str, Any] = run_result.get("result") or {}
    md: dict[str, dg.MetadataValue[Any]] = {
        TRIES: dg.MetadataValue.int(len(run_result.get("attempts") or [])),
    }
    if result.get("errors"):
        md[ERRORS] = _json(list(result["errors"]))
    if result.get("load_id"):
        md[LOAD_ID] = _text(result["load_id"])
    for key, name in ((WATERMARK_BEFORE, "watermark_before"), (WATERMARK_AFTER, "watermark_after")):
        if result.get(name) is not None:
            md[key] = _scalar(result[name])
    if result.get("exit_code") is not None:
        md[EXIT_CODE] = dg.MetadataValue.int(int(result["exit_code"]))
    return md


def _evidence_metadata(evidence: Mapping[str, str]) -> dict[str, dg.MetadataValue[Any]]:
    """Evidence paths. A report written before invocations were named so has only the
    ``attempt_report_json`` entry; both keys then point at it."""
    md: dict[str, dg.MetadataValue[Any]] = {}
    if "report_json" in evidence:
        md[REPORT_JSON] = _path(evidence["report_json"])
    if "report_md" in evidence:
        md[REPORT_MD] = _path(evidence["report_md"])
    invocation = evidence.get("invocation_report_json") or evidence.get("attempt_report_json")
    if invocation:
        md[INVOCATION_REPORT_JSON] = _path(invocation)
        md[ATTEMPT_REPORT_JSON] = _path(invocation)
    return md


def failures_metadata(
    first_failure: Mapping[str, Any] | None, summaries: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """A failed step's metadata: the first failed process's, plus :data:`FAILURES`."""
    metadata: dict[str, Any] = dict(first_failure) if first_failure else {}
    metadata[FAILURES] = _json(list(summaries))
    return metadata


def run_id_of(metadata: Mapping[str, Any]) -> str | None:
    """The run id a materialization's metadata records (None for a foreign one)."""
    value = metadata.get(RUN_ID)
    return str(metadata_value(value)) if value is not None else None


# -- definition metadata -----------------------------------------------------------------
def _partitions_text(parts: PartitionsSpec) -> str:
    until = f" to {parts.end}" if parts.end else ""
    return f"{parts.granularity} from {parts.start}{until}"


def definition_metadata(process: DponeProcess) -> dict[str, Any]:
    """Small, definition-time metadata (shown on the asset's page): the translator's default."""
    spec = process.spec
    metadata: dict[str, Any] = {
        MANIFEST: dg.MetadataValue.path(str(process.manifest_path)),
        MANIFEST_SHA256: process.manifest.sha256,
        SELECTOR: process.selector,
        KIND: spec.kind,
    }
    if isinstance(spec, TransferProcess):
        metadata[STRATEGY] = dg.MetadataValue.json(
            spec.strategy.model_dump(mode="json", exclude_defaults=False)
        )
        metadata[SOURCE] = (
            f"{spec.source.connection}.{spec.source.table}"
            if spec.source.table is not None
            else f"{spec.source.connection} (query)"
        )
        metadata[TARGET] = f"{spec.target.connection}.{spec.target.table}"
        metadata[TABLE_NAME] = declared_table_name(process.manifest, spec)
    if spec.concurrency_key:
        metadata[CONCURRENCY_KEY] = spec.concurrency_key
    if spec.partitions is not None:
        metadata[PARTITIONS] = _partitions_text(spec.partitions)
    metadata[CODE_REFERENCES] = _code_references(process)
    return metadata


def _code_references(process: DponeProcess) -> dg.CodeReferencesMetadataValue:
    """The manifest file and the process's line, for the UI's link to the source.

    Dagster flags both classes as beta with a warning on every construction (its
    filter registry is reset while definitions load, so "once" does not hold): a
    code location of 1,000 processes printed 2,000 warnings nobody can act on.
    """
    path = process.manifest_path
    line = process.line
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.CodeReferencesMetadataValue(
            code_references=[
                dg.LocalFileCodeReference(
                    file_path=str(path),
                    line_number=line or 1,
                    label=f"process {process.selector!r} in {path.name}",
                )
            ]
        )


def runtime_metadata(process: DponeProcess, run_id_prefix: str) -> dict[str, Any]:
    """What the resource reads at run time; added after the translator, so never lost."""
    metadata: dict[str, Any] = {
        MANIFEST: dg.MetadataValue.path(str(process.manifest_path)),
        MANIFEST_SHA256: process.manifest.sha256,
        SELECTOR: process.selector,
        KIND: process.spec.kind,
        RUN_ID_PREFIX: run_id_prefix,
    }
    if process.spec.partitions is not None:
        metadata[PARTITIONS] = _partitions_text(process.spec.partitions)
    if process.spec.concurrency_key:
        metadata[CONCURRENCY_KEY] = process.spec.concurrency_key
    return metadata


@dataclass(frozen=True)
class RuntimeMetadata:
    """The :func:`runtime_metadata` of a spec, read back."""

    manifest_path: str
    manifest_sha256: str | None
    selector: str
    kind: str
    run_id_prefix: str
    partitioned: bool
    concurrency_key: str | None = None


def read_runtime_metadata(spec: dg.AssetSpec) -> RuntimeMetadata:
    """Read back :func:`runtime_metadata`; a spec without it was not built by dpone."""
    metadata = spec.metadata
    try:
        manifest = str(metadata_value(metadata[MANIFEST]))
        selector = str(metadata_value(metadata[SELECTOR]))
    except KeyError as exc:
        raise dg.DagsterInvariantViolationError(
            f"asset {spec.key.to_user_string()} has no {exc.args[0]!r} metadata; "
            "it was not built by @dpone_assets / build_dpone_assets"
        ) from None
    sha = metadata.get(MANIFEST_SHA256)
    prefix = metadata.get(RUN_ID_PREFIX)
    key = metadata.get(CONCURRENCY_KEY)
    return RuntimeMetadata(
        manifest_path=manifest,
        manifest_sha256=str(metadata_value(sha)) if sha is not None else None,
        selector=selector,
        kind=str(metadata_value(metadata.get(KIND, "transfer"))),
        run_id_prefix=str(metadata_value(prefix)) if prefix is not None else selector,
        partitioned=PARTITIONS in metadata,
        concurrency_key=str(metadata_value(key)) if key else None,
    )


# -- check metadata ----------------------------------------------------------------------
def check_metadata(
    *,
    run_id: str,
    job_state_file: str,
    job_state_status: str,
    load_id: str | None = None,
    ledger_status: str | None = None,
) -> dict[str, Any]:
    """The ``dpone_committed`` check's metadata (see :data:`CHECK_METADATA_KEYS`)."""
    metadata: dict[str, Any] = {
        RUN_ID: run_id,
        JOB_STATE_FILE: dg.MetadataValue.path(job_state_file),
        JOB_STATE_STATUS: job_state_status,
    }
    if load_id is not None:
        metadata[LOAD_ID] = load_id
        metadata[LEDGER_STATUS] = ledger_status or "missing"
    return metadata
