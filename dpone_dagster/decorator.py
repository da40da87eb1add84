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
or :func:`~dpone_dagster.factory.build_dpone_assets`, which splits by itself). The
multi-asset itself comes from :func:`~dpone_dagster.multi_asset.dpone_multi_asset`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import dagster as dg

from dpone_core.manifest import LoadedManifest, load_manifest
from dpone_dagster.multi_asset import dpone_multi_asset
from dpone_dagster.process import processes_of
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["dpone_assets"]


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
    return dpone_multi_asset(
        processes,
        name=name,
        translator=translator,
        checks=checks,
        op_tags=op_tags,
        retry_policy=retry_policy,
        backfill_policy=backfill_policy,
        pool=pool,
    )
