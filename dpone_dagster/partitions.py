"""Partitions: the manifest's ``partitions:`` block as a Dagster partitions definition,
and the deterministic run id and window of one partition.

Partitions are in UTC: a naive ``start``/``end`` is read as UTC, an aware one is
converted. ``end`` is exclusive (the last partition ends there), as in Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from dpone_core.logical_run import parse_execution_date
from dpone_core.manifest import PartitionsSpec

__all__ = [
    "PartitionWindow",
    "partitioned_run_id",
    "partitions_definition",
    "unpartitioned_run_id",
]



def _utc(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def partitions_definition(spec: PartitionsSpec) -> dg.TimeWindowPartitionsDefinition:
    """``daily`` -> ``DailyPartitionsDefinition``; ``hourly`` -> ``HourlyPartitionsDefinition``."""
    start = _utc(spec.start).replace(tzinfo=None)
    end = _utc(spec.end).replace(tzinfo=None) if spec.end is not None else None
    if spec.granularity == "daily":
        return dg.DailyPartitionsDefinition(start_date=start, end_date=end, timezone="UTC")
    return dg.HourlyPartitionsDefinition(start_date=start, end_date=end, timezone="UTC")


def partitioned_run_id(prefix: str, window_start: str) -> str:
    """``<prefix>_<logical date>``: the run-id rule of :mod:`dpone_core.logical_run`.

    The partition's logical date is its window's start in UTC (``2026_11_30`` for a
    day, ``2026_11_30T05_00`` for an hour), so the same partition is always the same
    logical run, and the same run id cron, Airflow, Kubernetes and the CLI derive
    for that date: whichever scheduler runs it first, the others are refused.
    """
    return f"{prefix}_{parse_execution_date(window_start).token()}"


def unpartitioned_run_id(prefix: str, root_run_id: str) -> str:
    """``<selector>_<Dagster root run id>``.

    The *root* run id is shared by a run and all its re-executions (retries from
    failure, auto-retries), so a retry reaches the same job state and skips what
    already committed, while every fresh Dagster run is a new logical run. The full
    id is used: a short prefix collides within a year of frequent schedules, and a
    collision would refuse a fresh run as ``already_committed``.
    """
    return f"{prefix}_{root_run_id}"


@dataclass(frozen=True)
class PartitionWindow:
    """The partition a materialization targets: its key and ISO-8601 window."""

    key: str
    start: str
    end: str

    @classmethod
    def from_context(cls, context: dg.AssetExecutionContext) -> PartitionWindow | None:
        """The single time partition of ``context``, or None for an unpartitioned run.

        dpone assets use a one-partition-per-run backfill policy, so a range is
        always one partition; anything else is refused with a clear error.
        """
        if not context.has_partition_key_range and not context.has_partition_key:
            return None
        keys = context.partition_keys
        if len(keys) != 1:
            raise dg.Failure(
                description=(
                    f"dpone runs one partition per Dagster run, but this run targets "
                    f"{len(keys)} partitions ({keys[0]} .. {keys[-1]}); launch the backfill "
                    "with one run per partition (the assets' default backfill policy)"
                ),
                allow_retries=False,
            )
        window = context.partition_time_window
        return cls(key=keys[0], start=window.start.isoformat(), end=window.end.isoformat())
