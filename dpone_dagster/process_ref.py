"""Which processes a step runs: each selected asset's process, read from its spec metadata.

At run time the resource never loads definitions again: everything it needs to
run an asset's process (manifest path, selector, run-id prefix, partitioned or
not) is in the asset spec's runtime metadata
(:func:`dpone_dagster.metadata.runtime_metadata`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from dpone_dagster.metadata import read_runtime_metadata

__all__ = ["ProcessRef", "selected_refs"]


@dataclass(frozen=True)
class ProcessRef:
    """What the resource needs to run one asset's process, read from its spec metadata."""

    asset_key: dg.AssetKey
    manifest_path: str
    manifest_sha256: str | None
    selector: str
    kind: str
    run_id_prefix: str
    partitioned: bool
    #: Keys of assets in the same multi-asset that this one depends on.
    sibling_deps: tuple[dg.AssetKey, ...]
    #: The manifest's ``concurrency_key`` of the process, if it has one.
    concurrency_key: str | None = None

    @property
    def lock_key(self) -> str:
        """The key every Dagster run of this asset locks: the manifest's, else the process's.

        Never the run id: two Dagster runs of one asset (two root runs) have different run
        ids, and must still not load the same table at the same time.
        """
        return self.concurrency_key or f"{Path(self.manifest_path).stem}.{self.selector}"

    @property
    def label(self) -> str:
        return f"{self.asset_key.to_user_string()} (process {self.selector!r})"

    @property
    def is_transfer(self) -> bool:
        return self.kind == "transfer"

    @classmethod
    def from_spec(cls, spec: dg.AssetSpec, siblings: frozenset[dg.AssetKey]) -> ProcessRef:
        runtime = read_runtime_metadata(spec)
        return cls(
            asset_key=spec.key,
            manifest_path=runtime.manifest_path,
            manifest_sha256=runtime.manifest_sha256,
            selector=runtime.selector,
            kind=runtime.kind,
            run_id_prefix=runtime.run_id_prefix,
            partitioned=runtime.partitioned,
            sibling_deps=tuple(dep.asset_key for dep in spec.deps if dep.asset_key in siblings),
            concurrency_key=runtime.concurrency_key,
        )


def selected_refs(context: dg.AssetExecutionContext) -> list[ProcessRef]:
    """The selected processes of this step, in the multi-asset's (topological) order."""
    assets_def = context.assets_def
    siblings = frozenset(assets_def.keys)
    selected = context.selected_asset_keys
    return [
        ProcessRef.from_spec(spec, siblings) for spec in assets_def.specs if spec.key in selected
    ]
