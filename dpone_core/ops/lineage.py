"""OpenLineage run events from a registry entry (pure: no I/O, no clock).

A run (one attempt of a run id) becomes two events of the openlineage-python
client's own models (``openlineage.client.event_v2``, spec 2-0-2), so every event
is checked by the client's validators as it is built:

- ``START`` at the attempt's start and ``COMPLETE`` (committed, or a passed plain
  run), ``FAIL`` (failed) or ``ABORT`` (blocked after it ran) at its end — the
  run's real times from the entry, not the time of export;
- ``run.runId``: :func:`openlineage_run_id`, a UUID (the spec requires one)
  derived deterministically from the dpone run id and attempt, so exporting the
  same entry twice gives the same run and a resumed attempt a new one;
- ``job``: namespace as configured (``OPENLINEAGE_NAMESPACE``, else ``dpone``),
  name ``<manifest file name without extension>.<process>``;
- run facets: ``processing_engine`` (dpone's version and the client's),
  ``tags`` (dpone run id, attempt, status, load id, where the registry entry is),
  ``parent`` when a scheduler passed one, ``errorMessage`` on FAIL/ABORT;
- job facets: ``jobType`` (BATCH, DPONE, TRANSFER/COMMAND), ``documentation``
  (the process's description), ``ownership`` (its owners), ``sql`` (a query source);
- datasets: ``schema`` (the real columns, when they could be read) and
  ``dataSource`` on every dataset; ``inputStatistics``/``outputStatistics`` with
  the run's row counts on the primary input/output of the final event.

:func:`event_dicts` serialises with the client's ``Serde`` and masks every
string with :func:`~dpone_core.redact.redact`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from openlineage.client import event_v2
from openlineage.client.facet_v2 import (
    JobFacet,
    RunFacet,
    datasource_dataset,
    documentation_job,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    parent_run,
    processing_engine_run,
    schema_dataset,
    sql_job,
    tags_run,
)
from openlineage.client.serde import Serde

from dpone_core.ops.entry import ParentRun, RegistryEntry, redact_strings
from dpone_core.ops.lineage_columns import Column

__all__ = [
    "DEFAULT_JOB_NAMESPACE",
    "RUN_ID_NAMESPACE",
    "LineageDataset",
    "LineageJob",
    "build_run_events",
    "event_dicts",
    "job_name_for",
    "openlineage_run_id",
    "producer_uri",
]

DEFAULT_JOB_NAMESPACE = "dpone"
#: The UUID namespace of :func:`openlineage_run_id` (uuid5 of URL ``urn:dpone:openlineage-run``).
RUN_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:dpone:openlineage-run")
_END_TYPES = {
    "committed": event_v2.RunState.COMPLETE,
    "passed": event_v2.RunState.COMPLETE,
    "failed": event_v2.RunState.FAIL,
    "blocked": event_v2.RunState.ABORT,
}


@dataclass(frozen=True)
class LineageJob:
    namespace: str
    name: str
    #: ``transfer`` or ``command`` (None: unknown).
    kind: str | None = None
    description: str | None = None
    owners: tuple[str, ...] = ()
    query: str | None = None


@dataclass(frozen=True)
class LineageDataset:
    namespace: str
    name: str
    columns: tuple[Column, ...] | None = None
    #: The run's rows for this dataset (extracted for the input, written for the output).
    row_count: int | None = None


@dataclass(frozen=True)
class _Context:
    entry: RegistryEntry
    job: LineageJob
    run_id: str
    producer: str
    entry_location: str | None
    inputs: Sequence[LineageDataset] = field(default_factory=tuple)
    outputs: Sequence[LineageDataset] = field(default_factory=tuple)


def openlineage_run_id(run_id: str, attempt: int) -> str:
    """The OpenLineage ``runId`` of attempt ``attempt`` of dpone run ``run_id`` (a UUID v5)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, f"{run_id}#{attempt}"))


def job_name_for(manifest_path: str | None, process: str) -> str:
    """``<manifest file name without extension>.<process>`` (the process alone without one)."""
    if not manifest_path:
        return process
    return f"{PurePath(manifest_path).stem}.{process}"


def producer_uri(version: str) -> str:
    return f"urn:dpone:dpone-dagster:{version}"


def _run_facets(ctx: _Context, final: bool) -> dict[str, RunFacet]:
    entry = ctx.entry
    tags = [
        ("dpone.run_id", entry.run_id),
        ("dpone.attempt", str(entry.attempt)),
        ("dpone.process", entry.process),
        ("dpone.status", entry.status),
        ("dpone.load_id", entry.load_id),
        ("dpone.registry_entry", ctx.entry_location),
    ]
    facets: dict[str, RunFacet] = {
        "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
            version=ctx.producer.rsplit(":", 1)[-1],
            name="dpone",
            openlineageAdapterVersion=_client_version(),
            producer=ctx.producer,
        ),
        "tags": tags_run.TagsRunFacet(
            tags=[
                tags_run.TagsRunFacetFields(key=k, value=v, source="DPONE")
                for k, v in tags
                if v is not None
            ],
            producer=ctx.producer,
        ),
    }
    if entry.parent is not None:
        facets["parent"] = _parent_facet(entry.parent, ctx.producer)
    message = "\n".join(entry.errors or entry.blockers)
    if final and entry.status in ("failed", "blocked") and message:
        facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="PYTHON", producer=ctx.producer
        )
    return facets


def _client_version() -> str:
    from openlineage.client.constants import __version__

    return __version__


def _parent_facet(parent: ParentRun, producer: str) -> parent_run.ParentRunFacet:
    root = None
    if parent.root is not None:
        root = parent_run.Root(
            run=parent_run.RootRun(runId=parent.root.run_id),
            job=parent_run.RootJob(namespace=parent.root.namespace, name=parent.root.name),
        )
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=parent.run_id),
        job=parent_run.Job(namespace=parent.namespace, name=parent.name),
        root=root,
        producer=producer,
    )


def _job(ctx: _Context) -> event_v2.Job:
    job = ctx.job
    facets: dict[str, JobFacet] = {
        "jobType": job_type_job.JobTypeJobFacet(
            processingType="BATCH",
            integration="DPONE",
            jobType=(job.kind or "process").upper(),
            producer=ctx.producer,
        )
    }
    if job.description:
        facets["documentation"] = documentation_job.DocumentationJobFacet(
            description=job.description, producer=ctx.producer
        )
    if job.owners:
        facets["ownership"] = ownership_job.OwnershipJobFacet(
            owners=[ownership_job.Owner(name=owner) for owner in job.owners],
            producer=ctx.producer,
        )
    if job.query:
        facets["sql"] = sql_job.SQLJobFacet(query=job.query, producer=ctx.producer)
    return event_v2.Job(namespace=job.namespace, name=job.name, facets=facets)


def _dataset_facets(dataset: LineageDataset, producer: str) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "dataSource": datasource_dataset.DatasourceDatasetFacet(
            name=dataset.namespace, uri=dataset.namespace, producer=producer
        )
    }
    if dataset.columns is not None:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(
            fields=[
                schema_dataset.SchemaDatasetFacetFields(
                    name=column.name, type=column.type, ordinal_position=index
                )
                for index, column in enumerate(dataset.columns, start=1)
            ],
            producer=producer,
        )
    return facets


def _inputs(ctx: _Context, final: bool) -> list[event_v2.InputDataset]:
    found = []
    for dataset in ctx.inputs:
        extra: dict[str, Any] = {}
        if final and dataset.row_count is not None:
            extra["inputStatistics"] = (
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=dataset.row_count, producer=ctx.producer
                )
            )
        found.append(
            event_v2.InputDataset(
                namespace=dataset.namespace,
                name=dataset.name,
                facets=_dataset_facets(dataset, ctx.producer),
                inputFacets=extra,
            )
        )
    return found


def _outputs(ctx: _Context, final: bool) -> list[event_v2.OutputDataset]:
    found = []
    for dataset in ctx.outputs:
        extra: dict[str, Any] = {}
        if final and dataset.row_count is not None:
            extra["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=dataset.row_count, producer=ctx.producer
                )
            )
        found.append(
            event_v2.OutputDataset(
                namespace=dataset.namespace,
                name=dataset.name,
                facets=_dataset_facets(dataset, ctx.producer),
                outputFacets=extra,
            )
        )
    return found


def _event(ctx: _Context, event_type: event_v2.RunState, at: str) -> event_v2.RunEvent:
    final = event_type is not event_v2.RunState.START
    return event_v2.RunEvent(
        eventType=event_type,
        eventTime=at,
        run=event_v2.Run(runId=ctx.run_id, facets=_run_facets(ctx, final)),
        job=_job(ctx),
        inputs=_inputs(ctx, final),
        outputs=_outputs(ctx, final),
        producer=ctx.producer,
    )


def build_run_events(
    entry: RegistryEntry,
    job: LineageJob,
    inputs: Sequence[LineageDataset],
    outputs: Sequence[LineageDataset],
    *,
    producer: str,
    entry_location: str | None = None,
) -> list[event_v2.RunEvent]:
    """``[START, COMPLETE | FAIL | ABORT]`` of the run ``entry`` records."""
    ctx = _Context(
        entry=entry,
        job=job,
        run_id=openlineage_run_id(entry.run_id, entry.attempt),
        producer=producer,
        entry_location=entry_location,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
    )
    start = entry.started_at or entry.finished_at or entry.registered_at
    end = entry.finished_at or start
    return [
        _event(ctx, event_v2.RunState.START, start),
        _event(ctx, _END_TYPES[entry.status], end),
    ]


def event_dicts(events: Sequence[event_v2.RunEvent]) -> list[dict[str, Any]]:
    """The events as JSON-ready dicts (the client's serialisation), every string redacted."""
    cleaned: list[dict[str, Any]] = [redact_strings(Serde.to_dict(event)) for event in events]
    return cleaned
