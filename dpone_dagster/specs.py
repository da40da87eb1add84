"""The asset specs of manifest processes: the translator's spec plus runtime metadata, in run order.

The translator decides what a user may customise; the runtime metadata (what the
resource reads back at run time, :func:`dpone_dagster.metadata.runtime_metadata`)
is added after it, so a custom translator cannot lose it. Specs come out in run
order: a process after the siblings whose targets it reads.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from dpone_dagster.metadata import runtime_metadata
from dpone_dagster.process import DponeProcess
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = ["build_dpone_specs", "in_run_order"]


def build_dpone_specs(
    processes: Sequence[DponeProcess], translator: DagsterDponeTranslator | None = None
) -> list[dg.AssetSpec]:
    """The asset specs of ``processes`` (translator output + runtime metadata), in run order."""
    translator = translator or DagsterDponeTranslator()
    specs = []
    for process in processes:
        spec = translator.get_asset_spec(process)
        runtime = runtime_metadata(process, translator.get_run_id_prefix(process))
        specs.append(
            spec.replace_attributes(
                metadata={**spec.metadata, **runtime},
                # Skippable: a failed process yields no result; its siblings' results stand.
                skippable=True,
            )
        )
    return in_run_order(specs)


def in_run_order(specs: list[dg.AssetSpec]) -> list[dg.AssetSpec]:
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
