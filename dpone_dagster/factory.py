"""``build_dpone_assets``: every process of many manifests as Dagster assets, in one call.

Per manifest, processes are grouped by what Dagster fixes per op -- the
partitions definition and the concurrency pool -- and each group becomes one
subsettable multi-asset (usually: one per manifest; a group of more than
``max_processes_per_op`` processes becomes several, cut in run order so that
every dependency points to an earlier op). The compute function is
``resource.materialize(context)``; use :func:`~dpone_dagster.decorator.dpone_assets`
to write your own body instead.
"""

import gc
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import dagster as dg

from dpone_dagster.invocation import StepResult
from dpone_dagster.metadata import SELECTOR, metadata_value
from dpone_dagster.multi_asset import dpone_multi_asset, op_name_for
from dpone_dagster.process import DponeProcess, expand_manifest_paths, load_all, processes_of
from dpone_dagster.resource import DponeResource
from dpone_dagster.run_config import DponeRunConfig
from dpone_dagster.specs import build_dpone_specs
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["MAX_PROCESSES_PER_OP", "build_dpone_assets"]

#: Processes per op before a manifest is split. Dagster resolves a multi-asset's
#: dependencies in time proportional to (assets x external deps), so one op of
#: thousands of processes loads quadratically slower; a few hundred stays linear.
MAX_PROCESSES_PER_OP = 200


def _group_key(process: DponeProcess, translator: DagsterDponeTranslator) -> tuple[str, str]:
    """Processes that may share an op: the same partitions and the same pool."""
    parts = translator.get_partitions_def(process)
    return (
        _partitions_label(parts) if parts is not None else "",
        process.spec.concurrency_key or "",
    )


def _partitions_label(parts: dg.PartitionsDefinition[Any]) -> str:
    if isinstance(parts, dg.TimeWindowPartitionsDefinition):
        return f"{parts.cron_schedule}|{parts.start.isoformat()}|{parts.fmt}|{parts.timezone}"
    return repr(parts)


def _refuse_shared(
    processes: Sequence[DponeProcess],
    value: Callable[[DponeProcess], Any],
    what: Callable[[Any], str],
) -> None:
    """Refuse at load time two processes with one ``value``, naming both and what it means."""
    seen: dict[Any, DponeProcess] = {}
    for process in processes:
        key = value(process)
        other = seen.get(key)
        if other is not None:
            raise dg.DagsterInvalidDefinitionError(
                f"processes {other.selector!r} of {other.manifest_path} and "
                f"{process.selector!r} of {process.manifest_path} {what(key)}"
            )
        seen[key] = process


def _check_unique_asset_keys(
    processes: Sequence[DponeProcess], translator: DagsterDponeTranslator
) -> None:
    """Two processes with one asset key: a named error instead of Dagster's generic one."""
    _refuse_shared(
        processes,
        translator.get_asset_key,
        lambda key: f"would both be the asset {key.to_user_string()!r} (two transfers into "
        "one table, or a table named like a command). Give one another target, or subclass "
        "DagsterDponeTranslator and override get_asset_key.",
    )


def _check_unique_run_ids(
    processes: Sequence[DponeProcess], translator: DagsterDponeTranslator
) -> None:
    """Two processes with one run-id prefix would share job states: refuse at load time.

    Raising beats silently qualifying the run ids: a run id that changed because
    another manifest was added would lose its job state (resume, already committed).
    """
    _refuse_shared(
        processes,
        translator.get_run_id_prefix,
        lambda prefix: f"would share the run id prefix {prefix!r} (and so their job states). "
        "Rename one, or subclass DagsterDponeTranslator and override get_run_id_prefix.",
    )


def build_dpone_assets(
    manifests: Sequence[str | os.PathLike[str]],
    translator: DagsterDponeTranslator | None = None,
    *,
    resource_key: str = "dpone",
    checks: bool = True,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    max_processes_per_op: int = MAX_PROCESSES_PER_OP,
) -> list[dg.AssetsDefinition]:
    """Assets for every process of ``manifests`` (files, or directories of ``*.yml``).

    Args:
        manifests: manifest files; a directory stands for its ``*.yml``/``*.yaml``.
        translator: customises keys, deps, groups, ... (:class:`DagsterDponeTranslator`).
        resource_key: the key of the :class:`~dpone_dagster.resource.DponeResource`.
        checks: add the ``dpone_committed`` asset check to every asset.
        op_tags, retry_policy: passed to every op.
        max_processes_per_op: a manifest with more processes is split into several ops
            (in run order, so every dependency points to an earlier op).
    """
    if max_processes_per_op < 1:
        raise ValueError("max_processes_per_op must be at least 1")
    with _collector_paused():
        return _build(
            manifests,
            translator or DagsterDponeTranslator(),
            resource_key=resource_key,
            checks=checks,
            op_tags=op_tags,
            retry_policy=retry_policy,
            max_processes_per_op=max_processes_per_op,
        )


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while the assets are built; restored on the way out.

    Building thousands of assets allocates millions of objects that all stay alive
    (they are the definitions). The collector cannot free any of them, yet each of its
    passes walks them, and the full passes walk everything the process holds: about a
    third of this function's time at 1,000 processes, and growing faster than the
    processes. Reference counting still frees whatever is dropped meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _build(
    manifests: Sequence[str | os.PathLike[str]],
    translator: DagsterDponeTranslator,
    *,
    resource_key: str,
    checks: bool,
    op_tags: Mapping[str, Any] | None,
    retry_policy: dg.RetryPolicy | None,
    max_processes_per_op: int,
) -> list[dg.AssetsDefinition]:
    loaded = load_all(expand_manifest_paths(manifests))
    everything = [process for manifest in loaded for process in processes_of(manifest)]
    _check_unique_run_ids(everything, translator)
    _check_unique_asset_keys(everything, translator)

    assets: list[dg.AssetsDefinition] = []
    used_names: set[str] = set()
    for manifest in loaded:
        groups: dict[tuple[str, str], list[DponeProcess]] = {}
        for process in processes_of(manifest):
            groups.setdefault(_group_key(process, translator), []).append(process)
        for (partitions, pool), processes in groups.items():
            base = _op_name(manifest.path.stem, partitions, pool, len(groups))
            by_key = {p.selector: p for p in processes}
            specs = build_dpone_specs(processes, translator)  # in run (topological) order
            chunks = [
                specs[i : i + max_processes_per_op]
                for i in range(0, len(specs), max_processes_per_op)
            ]
            for index, chunk in enumerate(chunks, start=1):
                name = _unique(base if len(chunks) == 1 else f"{base}_{index}", used_names)
                members = [by_key[_selector(spec)] for spec in chunk]
                decorate = dpone_multi_asset(
                    members,
                    name=name,
                    translator=translator,
                    checks=checks,
                    op_tags=op_tags,
                    retry_policy=retry_policy,
                    backfill_policy=None,
                    pool=None,
                    required_resource_keys={resource_key},
                    specs=chunk,
                )
                assets.append(decorate(_compute_fn(resource_key)))
    return assets


def _selector(spec: dg.AssetSpec) -> str:
    return str(metadata_value(spec.metadata[SELECTOR]))


def _op_name(stem: str, partitions: str, pool: str, groups: int) -> str:
    if groups == 1:
        return op_name_for(f"dpone_{stem}")
    granularity = ""
    if partitions:
        hourly = partitions.split("|", 1)[0].split()[1:2] == ["*"]
        granularity = "hourly" if hourly else "daily"
    suffix = "_".join(part for part in (pool, granularity) if part) or "default"
    return op_name_for(f"dpone_{stem}__{suffix}")


def _unique(name: str, used: set[str]) -> str:
    candidate, n = name, 2
    while candidate in used:
        candidate, n = f"{name}_{n}", n + 1
    used.add(candidate)
    return candidate


def _compute_fn(
    resource_key: str,
) -> Callable[
    [dg.AssetExecutionContext, DponeRunConfig],
    Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult],
]:
    # No ``from __future__ import annotations`` in this module: Dagster reads the
    # annotation of ``context`` as an object, and a string annotation is rejected.
    def compute(context: dg.AssetExecutionContext, config: DponeRunConfig) -> Iterator[StepResult]:
        # ``config`` declares the op's run config; the invocation reads it from the context.
        del config
        resource: DponeResource = getattr(context.resources, resource_key)
        yield from resource.materialize(context)

    return compute
