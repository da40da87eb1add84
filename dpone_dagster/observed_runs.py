"""Which asset, which partition, made by whom: how the observation sensor reads a job state.

The sensor (:mod:`dpone_dagster.observe`) turns committed job states into
materializations; the rules it applies live here, one function each:

* **which asset** (:class:`AssetIndex`): the state's manifest and process
  against the assets' ``dpone/manifest`` and ``dpone/selector`` metadata, by
  resolved path first, else by manifest identity (the file name without
  extension, which is what names a manifest in run ids on every host); an
  identity shared by several assets' manifests without a path match is
  ambiguous and skipped;
* **which partition** (:func:`partition_of`): for a time-partitioned asset, the
  logical date the run id ends with (``<manifest>.<process>_2026_11_02``, the
  run-id rule of :mod:`dpone_core.logical_run`) or the partition key a
  Dagster-style run id ends with (``<prefix>_2026-11-02``); the partition whose
  window starts exactly there, inside the asset's partitions' range (today's
  partition too, before Dagster lists it); anything else is skipped;
* **who ran it** (:func:`made_here`): the scheduler the job state records for
  its current attempt (``scheduler.kind`` and ``run_id``): ``dagster`` with a
  run this Dagster instance holds was made here, anything else was not. For
  states that record no scheduler (older dpone), the mark dpone's Dagster
  steps leave (:func:`dagster_root_run_id`): the Dagster *root* run id in the
  evidence directory (``<output_root>/<run id>/dagster-<root>`` for
  partitions) or in the run id (``<prefix>_<root>`` otherwise), whose run
  must exist in this instance;
* **already there** (:func:`already_recorded`): one of the asset's
  (partition's) latest materializations carries this committed attempt;
* **what is reported** (:func:`committed_report`): the attempt's committed
  evidence report, with paths as this process reaches them, else a report
  rebuilt from the job state alone.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePath
from typing import Any

import dagster as dg

from dpone_core.evidence import read_latest_report
from dpone_core.job_state import JobState
from dpone_core.logical_run import manifest_identity
from dpone_core.metadata_keys import ATTEMPT
from dpone_core.naming import file_safe_name
from dpone_core.report import OrchestratedRunReport
from dpone_dagster.metadata import metadata_value, read_runtime_metadata, run_id_of
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.run_family import absolute_dir

__all__ = [
    "DAGSTER",
    "RECENT_MATERIALIZATIONS",
    "AssetIndex",
    "ObservedAsset",
    "already_recorded",
    "committed_report",
    "dagster_root_run_id",
    "made_here",
    "partition_of",
]

#: The scheduler kind Dagster records in a job state (``SchedulerIdentity.kind``).
DAGSTER = "dagster"

#: How many of an asset's (partition's) latest materializations are compared with a
#: committed attempt before it is reported (the "exactly once" safety net).
RECENT_MATERIALIZATIONS = 25

_DAGSTER_DIR = re.compile(r"dagster-(?P<root>.+)")
_DAGSTER_RUN_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
#: ``..._2026_11_02`` or ``..._2026_11_02T05_00`` (``_30`` seconds): dpone's logical date.
_LOGICAL_DATE = re.compile(
    r"_(?P<y>\d{4})_(?P<m>\d{2})_(?P<d>\d{2})(?:T(?P<H>\d{2})_(?P<M>\d{2})(?:_(?P<S>\d{2}))?)?$"
)
#: ``..._2026-11-02`` or ``..._2026-11-02-05_00``: a Dagster partition's run id.
_PARTITION_SUFFIX = re.compile(r"_(?P<key>\d{4}-\d{2}-\d{2}(?:-\d{2}_\d{2})?)$")


# -- which asset ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ObservedAsset:
    """One dpone asset as the sensor matches job states to it."""

    key: dg.AssetKey
    manifest_path: str
    identity: str
    process: str
    run_id_prefix: str
    partitions_def: dg.PartitionsDefinition[Any] | None


def _resolved(path: str) -> str:
    return str(Path(path).expanduser().resolve())


class AssetIndex:
    """The dpone assets among ``assets``, by (manifest path, process) and (identity, process).

    Assets not built by dpone (no ``dpone/manifest`` metadata) are left out, so
    every asset of a code location may be passed.
    """

    def __init__(self, assets: Iterable[dg.AssetsDefinition | dg.AssetSpec]) -> None:
        self.by_path: dict[tuple[str, str], ObservedAsset] = {}
        self.by_identity: dict[tuple[str, str], list[ObservedAsset]] = {}
        for spec, partitions_def in _specs(assets):
            try:
                runtime = read_runtime_metadata(spec)
            except dg.DagsterInvariantViolationError:
                continue  # not a dpone asset
            asset = ObservedAsset(
                key=spec.key,
                manifest_path=_resolved(runtime.manifest_path),
                identity=manifest_identity(runtime.manifest_path),
                process=runtime.selector,
                run_id_prefix=runtime.run_id_prefix,
                partitions_def=partitions_def,
            )
            self.by_path[(asset.manifest_path, asset.process)] = asset
            self.by_identity.setdefault((asset.identity, asset.process), []).append(asset)

    def __len__(self) -> int:
        return len(self.by_path)

    def match(self, state: JobState) -> tuple[ObservedAsset | None, str]:
        """The asset of ``state``'s process, or None and why not."""
        exact = self.by_path.get((_resolved(state.manifest_path), state.process))
        if exact is not None:
            return exact, ""
        identity = manifest_identity(state.manifest_path)
        candidates = self.by_identity.get((identity, state.process), [])
        if len(candidates) == 1:
            return candidates[0], ""
        if not candidates:
            return None, f"no asset of this sensor runs process {state.process!r} of {identity!r}"
        keys = ", ".join(sorted(c.key.to_user_string() for c in candidates))
        return None, (
            f"manifest {state.manifest_path!r} names no asset's manifest file, and its "
            f"identity {identity!r} with process {state.process!r} fits several: {keys}"
        )


def _specs(
    assets: Iterable[dg.AssetsDefinition | dg.AssetSpec],
) -> Iterable[tuple[dg.AssetSpec, dg.PartitionsDefinition[Any] | None]]:
    for item in assets:
        if isinstance(item, dg.AssetSpec):
            yield item, item.partitions_def
        else:
            for spec in item.specs:
                yield spec, spec.partitions_def or item.partitions_def


# -- which partition -----------------------------------------------------------------------
def partition_of(asset: ObservedAsset, run_id: str) -> tuple[PartitionWindow | None, str]:
    """The partition ``run_id`` names for ``asset`` (None when unpartitioned), or None and why.

    Only time partitions are mapped: the run id's logical date (or Dagster-style
    partition key) must start a partition window inside the partitions' range.
    """
    definition = asset.partitions_def
    if definition is None:
        return None, ""
    if not isinstance(definition, dg.TimeWindowPartitionsDefinition):
        return None, "the asset's partitions are not time partitions"
    start = _named_start(definition, run_id)
    if start is None:
        return None, f"run id {run_id!r} ends with no logical date or partition key"
    key = start.strftime(definition.fmt)
    try:
        window = definition.time_window_for_partition_key(key)
    except Exception:  # a format the definition cannot read back: not one of its keys
        window = None
    if window is None or window.start != start:
        return None, f"{start.isoformat()} starts no partition of the asset ({definition})"
    if window.start < definition.start or (
        definition.end is not None and window.end > definition.end
    ):
        return None, f"partition {key} is outside the asset's partitions ({definition})"
    return PartitionWindow(key=key, start=window.start.isoformat(), end=window.end.isoformat()), ""


def _named_start(definition: dg.TimeWindowPartitionsDefinition, run_id: str) -> datetime | None:
    """The UTC start a run id's suffix names: a logical date, or a Dagster partition key."""
    logical = _LOGICAL_DATE.search(run_id)
    if logical is not None:
        parts = {k: int(v) for k, v in logical.groupdict().items() if v is not None}
        return datetime(
            parts["y"],
            parts["m"],
            parts["d"],
            parts.get("H", 0),
            parts.get("M", 0),
            parts.get("S", 0),
            tzinfo=UTC,
        )
    suffix = _PARTITION_SUFFIX.search(run_id)
    if suffix is None:
        return None
    key = suffix.group("key").replace("_", ":")
    try:
        window = definition.time_window_for_partition_key(key)
    except Exception:
        return None
    return window.start.astimezone(UTC)


# -- who ran it ----------------------------------------------------------------------------
def dagster_root_run_id(state: JobState, asset: ObservedAsset) -> str | None:
    """The Dagster root run id a dpone Dagster step left in ``state``, or None.

    Partitioned steps write evidence to ``<output_root>/<run id>/dagster-<root>``;
    unpartitioned ones use the run id ``<prefix>_<root>`` and evidence in
    ``<output_root>/<run id>`` (see :mod:`dpone_dagster.run_family`).
    """
    out = PurePath(state.output_dir)
    own_dir = file_safe_name(state.run_id)
    marked = _DAGSTER_DIR.fullmatch(out.name)
    if marked is not None and out.parent.name == own_dir:
        return marked.group("root")
    prefix = f"{asset.run_id_prefix}_"
    if state.run_id.startswith(prefix) and out.name == own_dir:
        root = state.run_id[len(prefix) :]
        if _DAGSTER_RUN_ID.fullmatch(root):
            return root
    return None


def made_here(instance: dg.DagsterInstance, state: JobState, asset: ObservedAsset) -> bool:
    """Did a run of this Dagster instance make the state's current attempt?

    The attempt's recorded scheduler decides: ``dagster`` with a Dagster run id
    this instance holds (a dpone asset's step, or ``dpone orchestrate run``
    launched through Pipes); any other scheduler (``cli``, ``cron``,
    ``airflow``, ...) did not. A state that records no scheduler (written by an
    older dpone, or through the Python API), or a ``dagster`` one without a run
    id, is judged by the mark a dpone Dagster step leaves
    (:func:`dagster_root_run_id`).
    """
    scheduler = state.scheduler
    if scheduler is not None and scheduler.kind != DAGSTER:
        return False
    if scheduler is not None and scheduler.run_id:
        return instance.has_run(scheduler.run_id)
    root = dagster_root_run_id(state, asset)
    return root is not None and instance.has_run(root)


def already_recorded(
    instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None, state: JobState
) -> bool:
    """Does one of the latest materializations already carry this committed attempt?"""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
        limit=RECENT_MATERIALIZATIONS,
    ).records
    for record in records:
        materialization = record.asset_materialization
        if materialization is None:
            continue
        metadata = materialization.metadata
        attempt = metadata.get(ATTEMPT)
        if (
            run_id_of(metadata) == state.run_id
            and attempt is not None
            and int(metadata_value(attempt)) == state.attempt
        ):
            return True
    return False


# -- what is reported ----------------------------------------------------------------------
def committed_report(state: JobState, location: str, output_root: str) -> OrchestratedRunReport:
    """The committed attempt's evidence report, else a report rebuilt from the state alone.

    Evidence is looked for in the state's ``output_dir`` (relative ones against
    this process's directory) and in ``<output_root>/<run id>``; a report counts
    only if it is the committed report of this very attempt.
    """
    candidates = [
        absolute_dir(state.output_dir),
        absolute_dir(output_root) / file_safe_name(state.run_id),
    ]
    for directory in dict.fromkeys(candidates):
        report = read_latest_report(directory, "committed", run_id=state.run_id)
        stored = report.job_state if report is not None else None
        if (
            report is not None
            and stored is not None
            and stored.get("attempt") == state.attempt
            and stored.get("generation", 1) == state.generation
        ):
            return _found_at(report, directory, location)
    return _report_from_state(state, location)


def _found_at(
    report: OrchestratedRunReport, directory: Path, location: str
) -> OrchestratedRunReport:
    """``report`` with its paths as this process reaches them.

    A scheduler's paths may be relative to its own working directory: evidence
    paths are rebased onto the directory the report was found in, and the job
    state is where this sensor read it.
    """
    recorded = PurePath(report.output_dir)

    def here(path: str) -> str:
        try:
            return str(directory / PurePath(path).relative_to(recorded))
        except ValueError:  # not under the recorded evidence directory: keep it as it is
            return path

    return report.model_copy(
        update={
            "output_dir": str(directory),
            "evidence": {name: here(path) for name, path in report.evidence.items()},
            "job_state_path": location,
        }
    )


def _report_from_state(state: JobState, location: str) -> OrchestratedRunReport:
    return OrchestratedRunReport.of_committed_state(
        state,
        location=location,
        resume_policy="unknown",
        decision="committed outside Dagster; reported from the job state (its evidence "
        f"report was not found under {state.output_dir})",
    )
