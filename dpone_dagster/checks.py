"""The asset check of every dpone asset: the job state committed and the ledger holds the load.

A materialization says "the step yielded"; this check says "and the durable
evidence agrees": the job state file of the materialization's run id is
``committed`` and, for a transfer, the target database's ``_dpone_loads`` ledger
holds that load id as committed. It reads the target read-only through the
transfer engine's own connection and ledger code, so the check and the loader
can never disagree on where the ledger lives.

It runs inside the materializing step (right after each process) and also on its
own (select only the check): then it verifies the latest materialization's run id.
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from dpone_core.executor.transfer.ledger_status import ledger_status
from dpone_core.lifecycle import JobStatus
from dpone_core.redact import redact
from dpone_core.state import CorruptJobState, JobState, JobStateStore

__all__ = ["CHECK_NAME", "check_spec", "evaluate_check"]

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


def evaluate_check(
    *,
    asset_key: dg.AssetKey,
    store: JobStateStore,
    run_id: str,
    manifest_path: str,
    selector: str,
    is_transfer: bool,
) -> dg.AssetCheckResult:
    """Check ``run_id``'s durable evidence (see the module docstring)."""
    state, state_detail = _load_state(store, run_id)
    metadata: dict[str, Any] = {
        "dpone/run_id": run_id,
        "dpone/job_state_file": dg.MetadataValue.path(store.location(run_id)),
        "dpone/job_state_status": state.status.value if state is not None else "missing",
    }
    committed = state is not None and state.status is JobStatus.COMMITTED
    details = [state_detail]
    ledger_ok = True
    if committed and is_transfer:
        assert state is not None
        result = (state.run_result or {}).get("result") or {}
        load_id = result.get("load_id")
        if not load_id:
            ledger_ok = False
            details.append("the committed run result names no load id")
        else:
            metadata["dpone/load_id"] = str(load_id)
            lookup = ledger_status(manifest_path, selector, str(load_id))
            metadata["dpone/ledger_status"] = lookup.status or "missing"
            details.append(lookup.detail)
            ledger_ok = lookup.status == "committed"
    passed = committed and ledger_ok
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=CHECK_NAME,
        passed=passed,
        metadata=metadata,
        description=redact("; ".join(details)),
        severity=dg.AssetCheckSeverity.ERROR,
    )
