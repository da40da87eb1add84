"""The asset check of every dpone asset: the job state committed and the ledger holds the load.

A materialization says "the step yielded"; this check says "and the durable
evidence agrees": the job state file of the materialization's run id is
``committed`` and, for a transfer, the target database's ``_dpone_loads`` ledger
holds that load id as committed. It reads the target read-only through the
transfer engine's own connection and ledger code, so the check and the loader
can never disagree on where the ledger lives.

It runs inside the materializing step (right after each process) and also on its
own (select only the check): then it verifies the latest materialization's run id
(:func:`checks_without_assets`).
"""

from __future__ import annotations

from collections.abc import Iterator, Set

import dagster as dg

from dpone_core.errors import CorruptJobState
from dpone_core.executor.transfer import ledger_status
from dpone_core.lifecycle import JobStatus
from dpone_core.redact import redact
from dpone_core.state import JobState, JobStateStore
from dpone_dagster.metadata import check_metadata, run_id_of
from dpone_dagster.process_ref import ProcessRef

__all__ = [
    "CHECK_NAME",
    "check_spec",
    "checks_without_assets",
    "evaluate_check",
    "latest_materialized_run_id",
    "nothing_to_check",
]

CHECK_NAME = "dpone_committed"
_DESCRIPTION = (
    "The dpone job state of the materialization's run id is committed and, for a transfer, "
    "the target database's _dpone_loads ledger holds its load id as committed."
)


def check_spec(asset_key: dg.AssetKey) -> dg.AssetCheckSpec:
    """The check's spec for ``asset_key`` (non-blocking: downstream assets still run)."""
    return dg.AssetCheckSpec(name=CHECK_NAME, asset=asset_key, description=_DESCRIPTION)


def _load_state(store: JobStateStore, run_id: str) -> tuple[JobState | None, str]:
    try:
        state = store.load(run_id)
    except CorruptJobState as exc:
        return None, redact(f"the job state is corrupt: {exc}")
    if state is None:
        return None, f"no job state for run id {run_id!r}"
    return state, f"job state {state.status.value} at attempt {state.attempt}"


def evaluate_check(store: JobStateStore, ref: ProcessRef, run_id: str) -> dg.AssetCheckResult:
    """Check ``run_id``'s durable evidence (see the module docstring)."""
    state, state_detail = _load_state(store, run_id)
    committed = state is not None and state.status is JobStatus.COMMITTED
    details = [state_detail]
    load_id: str | None = None
    ledger: str | None = None
    ledger_ok = True
    if state is not None and committed and ref.is_transfer:
        result = (state.run_result or {}).get("result") or {}
        if not result.get("load_id"):
            ledger_ok = False
            details.append("the committed run result names no load id")
        else:
            load_id = str(result["load_id"])
            lookup = ledger_status(ref.manifest_path, ref.selector, load_id)
            ledger = lookup.status
            details.append(lookup.detail)
            ledger_ok = lookup.status == "committed"
    return dg.AssetCheckResult(
        asset_key=ref.asset_key,
        check_name=CHECK_NAME,
        passed=committed and ledger_ok,
        metadata=check_metadata(
            run_id=run_id,
            job_state_file=store.location(run_id),
            job_state_status=state.status.value if state is not None else "missing",
            load_id=load_id,
            ledger_status=ledger,
        ),
        description=redact("; ".join(details)),
        severity=dg.AssetCheckSeverity.ERROR,
    )


def latest_materialized_run_id(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partition: str | None = None
) -> str | None:
    """The dpone run id of the asset's latest materialization (in ``partition``, if given)."""
    records_filter = dg.AssetRecordsFilter(
        asset_key=asset_key, asset_partitions=[partition] if partition is not None else None
    )
    records = instance.fetch_materializations(records_filter, limit=1).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    if materialization is None:
        return None
    return run_id_of(materialization.metadata)


def checks_without_assets(
    context: dg.AssetExecutionContext,
    store: JobStateStore,
    materialized: Set[dg.AssetKey],
    partition: str | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Checks selected without their asset verify the asset's latest materialization.

    For a partitioned run, the latest materialization of the targeted partition: a
    check-only run of partition D checks D, not whichever partition ran last.
    """
    assets_def = context.assets_def
    siblings = frozenset(assets_def.keys)
    selected = context.selected_asset_check_keys
    for check_key in sorted(selected, key=lambda k: k.asset_key.to_user_string()):
        if check_key.name != CHECK_NAME or check_key.asset_key in materialized:
            continue
        ref = ProcessRef.from_spec(assets_def.specs_by_key[check_key.asset_key], siblings)
        run_id = latest_materialized_run_id(context.instance, ref.asset_key, partition)
        if run_id is None:
            yield nothing_to_check(ref, partition)
            continue
        yield evaluate_check(store, ref, run_id)


def nothing_to_check(ref: ProcessRef, partition: str | None) -> dg.AssetCheckResult:
    """The check of an asset (partition) that has no dpone materialization yet."""
    where = f" in partition {partition}" if partition else ""
    return dg.AssetCheckResult(
        asset_key=ref.asset_key,
        check_name=CHECK_NAME,
        passed=False,
        description=f"the asset has no dpone materialization{where} to check yet",
    )
