"""Partitions: the manifest's ``partitions:`` block as a Dagster partitions definition,
and the deterministic run id and window of one partition.

Partitions are in UTC: a naive ``start``/``end`` is read as UTC, an aware one is
converted. ``end`` is exclusive (the last partition ends there), as in Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from dpone_core.manifest import PartitionsSpec

__all__ = [
    "PartitionWindow",
    "partitioned_run_id",
    "partitions_definition",
    "unpartitioned_run_id",
]

_NOT_FILE_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


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


def file_safe_partition_key(partition_key: str) -> str:
    """``2026-11-01-05:00`` -> ``2026-11-01-05_00``.

    Only time partition keys reach this (fixed formats, so the mapping stays
    injective); the run id is then mapped to file names injectively by the engine.
    """
    return _NOT_FILE_SAFE.sub("_", partition_key)


def partitioned_run_id(prefix: str, partition_key: str) -> str:
    """``<selector>_<partition key>``: the same partition is always the same logical run.

    So a second materialization of a committed partition is refused
    (``job_state.already_committed``) instead of loading it twice.
    """
    return f"{prefix}_{file_safe_partition_key(partition_key)}"


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
