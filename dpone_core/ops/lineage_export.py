"""From a registry entry to OpenLineage events and their delivery (the I/O around :mod:`lineage`).

1. the job and its datasets: the entry's manifest (``--manifest`` overrides the
   path the entry records) gives the job's description, owners and query and,
   unless ``--input``/``--output`` name them, the datasets
   (:mod:`~dpone_core.ops.lineage_datasets`); a manifest that cannot be read is
   an error only when the datasets must come from it;
2. the real columns of every dataset on a manifest connection
   (:mod:`~dpone_core.ops.lineage_columns`); one that cannot be read is a warning;
3. the events (:func:`~dpone_core.ops.lineage.build_run_events`), and, when a
   transport is configured, their delivery with the spool in front
   (:mod:`~dpone_core.ops.lineage_emit`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dpone_core.errors import DponeUsageError
from dpone_core.manifest import ProcessSpec, TransferProcess
from dpone_core.ops.entry import ParentRun, RegistryEntry
from dpone_core.ops.lineage import (
    DEFAULT_JOB_NAMESPACE,
    LineageDataset,
    LineageJob,
    build_run_events,
    event_dicts,
    job_name_for,
    openlineage_run_id,
    producer_uri,
)
from dpone_core.ops.lineage_columns import read_columns
from dpone_core.ops.lineage_datasets import DatasetRef, datasets_from_manifest, datasets_from_specs
from dpone_core.ops.lineage_emit import Delivery

__all__ = ["JOB_NAMESPACE_ENV", "ExportRequest", "LineageExport", "export_lineage"]

JOB_NAMESPACE_ENV = "OPENLINEAGE_NAMESPACE"


@dataclass(frozen=True)
class ExportRequest:
    entry: RegistryEntry
    #: Where the entry is stored (carried in the events' tags), if it is.
    entry_location: str | None = None
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    manifest_path: str | None = None
    job_namespace: str | None = None
    parent: ParentRun | None = None


@dataclass
class LineageExport:
    run_id: str
    openlineage_run_id: str
    job_namespace: str
    job_name: str
    events: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    delivery: Delivery | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": 1,
            "run_id": self.run_id,
            "openlineage_run_id": self.openlineage_run_id,
            "job": {"namespace": self.job_namespace, "name": self.job_name},
            "events": self.events,
            "warnings": self.warnings,
            "delivery": None if self.delivery is None else self.delivery.to_dict(),
        }


@dataclass
class _Resolved:
    process: ProcessSpec | None
    connections: dict[str, str]
    problem: str | None


def _resolve_manifest(path: str | None, entry: RegistryEntry) -> _Resolved:
    if not path:
        return _Resolved(None, {}, "the entry names no manifest (pass --manifest)")
    from dpone_core.manifest import load_manifest, resolved_connections

    try:
        loaded = load_manifest(path)
        connections = resolved_connections(loaded)
        _, process = loaded.select(entry.selector or entry.process)
    except DponeUsageError as exc:
        return _Resolved(None, {}, str(exc))
    return _Resolved(process, connections, None)


def _datasets(
    request: ExportRequest, resolved: _Resolved, warnings: list[str]
) -> tuple[list[DatasetRef], list[DatasetRef]]:
    need_manifest = not request.inputs or not request.outputs
    if resolved.process is None:
        if need_manifest:
            from dpone_core.ops.errors import OpsInputError

            raise OpsInputError(
                "--run-registry-entry",
                "manifest_path",
                f"datasets come from the manifest unless --input and --output name them: "
                f"{resolved.problem}",
            )
        if resolved.problem:
            warnings.append(f"manifest not read: {resolved.problem}")
        manifest_in: list[DatasetRef] = []
        manifest_out: list[DatasetRef] = []
    else:
        manifest_in, manifest_out = datasets_from_manifest(
            request.entry.process, resolved.process, resolved.connections
        )
    inputs = (
        datasets_from_specs("input", list(request.inputs), resolved.connections)
        if request.inputs
        else manifest_in
    )
    outputs = (
        datasets_from_specs("output", list(request.outputs), resolved.connections)
        if request.outputs
        else manifest_out
    )
    return inputs, outputs


def _lineage_dataset(ref: DatasetRef, rows: int | None, warnings: list[str]) -> LineageDataset:
    columns = None
    if ref.url is not None and ref.table is not None:
        found, problem = read_columns(ref.url, ref.table)
        if problem is not None:
            warnings.append(f"no schema facet for {ref.id.namespace} {ref.id.name}: {problem}")
        columns = tuple(found) if found is not None else None
    return LineageDataset(
        namespace=ref.id.namespace,
        name=ref.id.name,
        columns=columns,
        row_count=rows if ref.primary else None,
    )


def _job(request: ExportRequest, process: ProcessSpec | None, namespace: str) -> LineageJob:
    entry = request.entry
    manifest = request.manifest_path or entry.manifest_path
    query = None
    if isinstance(process, TransferProcess):
        query = process.source.query
    return LineageJob(
        namespace=namespace,
        name=job_name_for(manifest, entry.process),
        kind=entry.process_kind or (process.kind if process is not None else None),
        description=process.description if process is not None else None,
        owners=tuple(process.owners) if process is not None else (),
        query=query,
    )


def export_lineage(
    request: ExportRequest,
    *,
    environ: Mapping[str, str] | None = None,
    spool_dir: str | None = None,
    config_path: str | None = None,
    emit: bool = True,
) -> LineageExport:
    """Build the events of ``request.entry`` and, when ``emit``, deliver them (never raises
    for a transport that fails: the delivery says so and the events are spooled)."""
    from dpone_core import __version__

    env = os.environ if environ is None else environ
    entry = request.entry
    if request.parent is not None:
        entry = entry.model_copy(update={"parent": request.parent})
    warnings: list[str] = []
    resolved = _resolve_manifest(request.manifest_path or entry.manifest_path, entry)
    inputs, outputs = _datasets(request, resolved, warnings)
    namespace = request.job_namespace or env.get(JOB_NAMESPACE_ENV) or DEFAULT_JOB_NAMESPACE
    job = _job(request, resolved.process, namespace)
    events = build_run_events(
        entry,
        job,
        [_lineage_dataset(ref, entry.rows.extracted, warnings) for ref in inputs],
        [_lineage_dataset(ref, entry.rows.written, warnings) for ref in outputs],
        producer=producer_uri(__version__),
        entry_location=request.entry_location,
    )
    export = LineageExport(
        run_id=entry.run_id,
        openlineage_run_id=openlineage_run_id(entry.run_id, entry.attempt),
        job_namespace=job.namespace,
        job_name=job.name,
        events=event_dicts(events),
        warnings=warnings,
    )
    if emit:
        from dpone_core.ops.lineage_emit import deliver, open_client
        from dpone_core.ops.lineage_spool import DEFAULT_SPOOL_DIR, LineageSpool

        client = open_client(config_path)
        spool = LineageSpool(spool_dir or DEFAULT_SPOOL_DIR)
        export.delivery = deliver(events, spool=spool, client=client)
    return export
