"""Would restarting this run from scratch load rows a second time?

A from-scratch restart starts a new *generation*, whose transfer gets a new
load id, so the ledger no longer recognises rows the previous generation
already published. For ``replace`` and ``merge`` (and ``incremental`` with a
key) loading again converges to the same target; for ``append`` (and
``incremental`` without a key) it duplicates every row. This module answers,
before admission, whether the previous generation's load of such a process is
already in the target's ledger; the orchestrator then refuses the restart
(``job_state.restart_would_duplicate``) unless the caller opted in.
"""

from __future__ import annotations

from dpone_core.manifest import TransferProcess, load_manifest

__all__ = ["duplicate_risk"]


def duplicate_risk(
    manifest_path: str, selector: str | None, run_id: str, previous_generation: int
) -> str | None:
    """Why a restart would publish rows twice, or None when it cannot.

    A ledger that cannot be read counts as a risk: not knowing is not safe.
    """
    loaded = load_manifest(manifest_path)
    process_name, process = loaded.select(selector)
    if not isinstance(process, TransferProcess):
        return None
    strategy = process.strategy
    if strategy.mode in ("replace", "merge") or (strategy.mode == "incremental" and strategy.key):
        return None
    from dpone_core.executor.transfer import ledger_status, load_id_for

    load_id = load_id_for(run_id, process_name, previous_generation)
    lookup = ledger_status(manifest_path, process_name, load_id)
    if not lookup.readable:
        return (
            f"mode {strategy.mode!r} appends, and whether generation {previous_generation} "
            f"already published its rows cannot be told: {lookup.detail}"
        )
    if lookup.status != "committed":  # absent, or claimed and never published
        return None
    return (
        f"mode {strategy.mode!r} appends, and generation {previous_generation} already "
        f"published its rows ({lookup.detail}); a restart from scratch would append them again"
    )
