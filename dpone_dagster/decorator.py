"""``@dpone_assets``: the processes of one manifest as one subsettable multi-asset.

In the style of ``@sling_assets``::

    @dpone_assets(manifest="manifests/shop.yml")
    def shop(context: dg.AssetExecutionContext, dpone: DponeResource):
        yield from dpone.materialize(context)

One multi-asset (one op) per manifest keeps a manifest's processes in one step,
run in dependency order, while ``can_subset=True`` lets Dagster select any of
them. Dagster fixes two things per op, not per asset: the partitions definition
and the concurrency pool. So the processes of one decorated function must agree
on ``partitions:`` and ``concurrency_key`` (use ``select=`` to split a manifest,
or :func:`~dpone_dagster.factory.build_dpone_assets`, which splits by itself).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from dpone_core.manifest import LoadedManifest, PartitionsSpec, load_manifest
from dpone_dagster.checks import check_spec
from dpone_dagster.partitions import partitions_definition
from dpone_dagster.process import DponeProcess, processes_of
from dpone_dagster.resource import (
    META_KIND,
    META_MANIFEST,
    META_MANIFEST_SHA,
    META_PARTITIONED,
    META_RUN_ID_PREFIX,
    META_SELECTOR,
)
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["build_dpone_specs", "dpone_assets", "op_name_for"]

_OP_INVALID = re.compile(r"[^A-Za-z0-9_]")


def op_name_for(text: str) -> str:
    """A valid Dagster op name (``[A-Za-z0-9_]+``, not starting with a digit)."""
    name = _OP_INVALID.sub("_", text) or "dpone"
    return f"_{name}" if name[0].isdigit() else name


def _runtime_metadata(process: DponeProcess, translator: DagsterDponeTranslator) -> dict[str, Any]:
    """What the resource reads at run time; added after the translator, so never lost."""
    metadata: dict[str, Any] = {
        META_MANIFEST: dg.MetadataValue.path(str(process.manifest_path)),
        META_MANIFEST_SHA: process.manifest.sha256,
        META_SELECTOR: process.selector,
        META_KIND: process.spec.kind,
        META_RUN_ID_PREFIX: translator.get_run_id_prefix(process),
    }
    parts = process.spec.partitions
    if parts is not None:
        until = f" to {parts.end}" if parts.end else ""
        metadata[META_PARTITIONED] = f"{parts.granularity} from {parts.start}{until}"
    return metadata


def _topological(specs: list[dg.AssetSpec]) -> list[dg.AssetSpec]:
    """Specs ordered so that a process runs after the siblings it reads; stable otherwise."""
    keys = {spec.key for spec in specs}
    pending = list(specs)
    done: set[dg.AssetKey] = set()
    ordered: list[dg.AssetSpec] = []
    while pending:
        ready = next(
            (
                i
                for i, spec in enumerate(pending)
                if {d.asset_key for d in spec.deps} & keys <= done
            ),
            0,  # a cycle: Dagster reports it; keep manifest order meanwhile
        )
        spec = pending.pop(ready)
        ordered.append(spec)
        done.add(spec.key)
    return ordered


def build_dpone_specs(
    processes: Sequence[DponeProcess], translator: DagsterDponeTranslator | None = None
) -> list[dg.AssetSpec]:
    """The asset specs of ``processes`` (translator output + runtime metadata), in run order."""
    translator = translator or DagsterDponeTranslator()
    specs = []
    for process in processes:
        spec = translator.get_asset_spec(process)
        specs.append(
            spec.replace_attributes(
                metadata={**spec.metadata, **_runtime_metadata(process, translator)},
                # Skippable: a failed process yields no result; its siblings' results stand.
                skippable=True,
            )
        )
    return _topological(specs)


def _shared(
    processes: Sequence[DponeProcess], what: str, value: Callable[[DponeProcess], Any]
) -> Any:
    values = {repr(value(p)): value(p) for p in processes}
    if len(values) > 1:
        listing = "; ".join(f"{p.selector}: {value(p)!r}" for p in processes)
        raise dg.DagsterInvalidDefinitionError(
            f"the processes of one @dpone_assets must share {what} (Dagster sets it per op), "
            f"got {listing}. Split them with select=, or use build_dpone_assets, which does."
        )
    return next(iter(values.values()))


def _multi_asset(
    processes: Sequence[DponeProcess],
    *,
    name: str | None,
    translator: DagsterDponeTranslator | None,
    checks: bool,
    op_tags: Mapping[str, Any] | None,
    retry_policy: dg.RetryPolicy | None,
    backfill_policy: dg.BackfillPolicy | None,
    pool: str | None,
    required_resource_keys: set[str] | None = None,
    specs: Sequence[dg.AssetSpec] | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The ``multi_asset`` decorator for ``processes`` (``specs``: theirs, if already built)."""
    if not processes:
        raise dg.DagsterInvalidDefinitionError("@dpone_assets selected no process")
    parts: PartitionsSpec | None = _shared(processes, "partitions", lambda p: p.spec.partitions)
    concurrency_key: str | None = _shared(
        processes, "concurrency_key", lambda p: p.spec.concurrency_key
    )
    if specs is None:
        specs = build_dpone_specs(processes, translator)
    partitions_def = partitions_definition(parts) if parts is not None else None
    if partitions_def is not None and backfill_policy is None:
        # One run per partition: each partition is its own logical run (run id, window).
        backfill_policy = dg.BackfillPolicy.multi_run(1)
    return dg.multi_asset(
        name=name,
        specs=specs,
        check_specs=[check_spec(spec.key) for spec in specs] if checks else None,
        can_subset=True,
        partitions_def=partitions_def,
        backfill_policy=backfill_policy,
        op_tags=op_tags,
        retry_policy=retry_policy,
        pool=pool if pool is not None else concurrency_key,
        required_resource_keys=required_resource_keys,
    )


def dpone_assets(
    *,
    manifest: str | os.PathLike[str] | LoadedManifest,
    select: Sequence[str] | None = None,
    name: str | None = None,
    translator: DagsterDponeTranslator | None = None,
    checks: bool = True,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    pool: str | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """A multi-asset over the processes of ``manifest`` (all, or those in ``select``).

    Args:
        manifest: path of the manifest (or an already loaded one).
        select: selectors to include (default: every process).
        name: the op's name (default: the decorated function's name).
        translator: customises keys, deps, groups, ... (:class:`DagsterDponeTranslator`).
        checks: add the ``dpone_committed`` asset check to every asset.
        op_tags, retry_policy: passed to the op. A retry of the step skips processes
            that already committed (see :class:`~dpone_dagster.resource.DponeResource`).
        backfill_policy: default for partitioned processes: one run per partition.
        pool: the op's concurrency pool (default: the processes' ``concurrency_key``).
    """
    loaded = manifest if isinstance(manifest, LoadedManifest) else load_manifest(manifest)
    processes = processes_of(loaded, select)
    return _multi_asset(
        processes,
        name=name,
        translator=translator,
        checks=checks,
        op_tags=op_tags,
        retry_policy=retry_policy,
        backfill_policy=backfill_policy,
        pool=pool,
    )
