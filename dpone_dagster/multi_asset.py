"""The one builder behind ``@dpone_assets`` and ``build_dpone_assets``: processes -> multi-asset.

One ``multi_asset(can_subset=True)`` (one op) keeps its processes in one step, run
in dependency order, while Dagster may select any of them. Dagster fixes two
things per op, not per asset: the partitions definition and the concurrency
pool, so the processes of one multi-asset must agree on ``partitions:`` and
``concurrency_key``. A partitioned multi-asset runs one partition per run
(``BackfillPolicy.multi_run(1)``): each partition is its own logical run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import dagster as dg

from dpone_dagster.checks import check_spec
from dpone_dagster.process import DponeProcess
from dpone_dagster.specs import build_dpone_specs
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["dpone_multi_asset", "op_name_for"]

_OP_INVALID = re.compile(r"[^A-Za-z0-9_]")
_T = TypeVar("_T")


def op_name_for(text: str) -> str:
    """A valid Dagster op name (``[A-Za-z0-9_]+``, not starting with a digit)."""
    name = _OP_INVALID.sub("_", text) or "dpone"
    return f"_{name}" if name[0].isdigit() else name


def _shared(
    processes: Sequence[DponeProcess], what: str, value: Callable[[DponeProcess], _T]
) -> _T:
    """The one ``value`` every process has; refuses processes that disagree."""
    values = {repr(value(p)): value(p) for p in processes}
    if len(values) > 1:
        listing = "; ".join(f"{p.selector}: {value(p)!r}" for p in processes)
        raise dg.DagsterInvalidDefinitionError(
            f"the processes of one @dpone_assets must share {what} (Dagster sets it per op), "
            f"got {listing}. Split them with select=, or use build_dpone_assets, which does."
        )
    return next(iter(values.values()))


def dpone_multi_asset(
    processes: Sequence[DponeProcess],
    *,
    name: str | None = None,
    translator: DagsterDponeTranslator | None = None,
    checks: bool = True,
    op_tags: Mapping[str, Any] | None = None,
    retry_policy: dg.RetryPolicy | None = None,
    backfill_policy: dg.BackfillPolicy | None = None,
    pool: str | None = None,
    required_resource_keys: set[str] | None = None,
    specs: Sequence[dg.AssetSpec] | None = None,
) -> Callable[[Callable[..., Any]], dg.AssetsDefinition]:
    """The ``multi_asset`` decorator over ``processes``.

    Args:
        processes: the processes, all with the same ``partitions:`` and ``concurrency_key``.
        name: the op's name (default: the decorated function's name).
        translator: customises keys, deps, groups, ... (ignored when ``specs`` is given).
        checks: add the ``dpone_committed`` asset check to every asset.
        op_tags, retry_policy: passed to the op.
        backfill_policy: default for partitioned processes: one run per partition.
        pool: the op's concurrency pool (default: the processes' ``concurrency_key``).
        required_resource_keys: for a compute function that takes no resource argument.
        specs: the processes' specs, when already built (:func:`build_dpone_specs`).
    """
    if not processes:
        raise dg.DagsterInvalidDefinitionError("@dpone_assets selected no process")
    translator = translator or DagsterDponeTranslator()
    partitions_def = _shared(processes, "partitions", translator.get_partitions_def)
    concurrency_key = _shared(processes, "concurrency_key", lambda p: p.spec.concurrency_key)
    if specs is None:
        specs = build_dpone_specs(processes, translator)
    if partitions_def is not None and backfill_policy is None:
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
