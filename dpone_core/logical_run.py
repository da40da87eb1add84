"""The run-id rule: one logical run of one process has one run id, whoever starts it.

``<manifest identity>.<process>_<logical date>``: the manifest's file name
without extension, the process name, and the logical date of the run as
``YYYY_MM_DD`` (a daily-or-coarser schedule) or ``YYYY_MM_DDTHH_MM`` in UTC (a
finer one). cron, Airflow, Kubernetes, Dagster and a person at the CLI pass the
logical date in their own idiom (``date -u +%F``, ``{{ ds }}``, a partition
key, ``--execution-date``); all of them land on the same id, so the job state
admits the logical run once (docs/orchestration.md, "Run ids").

Time zone: UTC, always. A timestamp with an offset is converted to UTC; one
without is taken as UTC; a timestamp at exactly 00:00 UTC names the same run as
its date, so a scheduler that passes a midnight logical time (Airflow's
``logical_date`` of a daily DAG) agrees with one that passes the date.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path

from dpone_core.schedule import Period

__all__ = ["LogicalDate", "logical_run_id", "manifest_identity", "parse_execution_date"]


@dataclass(frozen=True)
class LogicalDate:
    """A logical run's date (``moment`` is None) or UTC time (seconds kept when set)."""

    day: date
    moment: time | None = None

    @classmethod
    def of(cls, value: datetime, period: Period = Period.DAY) -> LogicalDate:
        """The logical date a scheduler firing at ``value`` names, at ``period`` precision."""
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if period is Period.DAY:
            return cls(utc.date())
        return cls._from_utc(utc.replace(second=0, microsecond=0))

    @classmethod
    def _from_utc(cls, utc: datetime) -> LogicalDate:
        moment = utc.timetz().replace(tzinfo=None, microsecond=0)
        return cls(utc.date(), None if moment == time(0, 0) else moment)

    def token(self) -> str:
        """What the run id ends with: ``2026_11_30`` or ``2026_11_30T02_00``."""
        text = self.day.strftime("%Y_%m_%d")
        if self.moment is None:
            return text
        text += self.moment.strftime("T%H_%M")
        return text + (self.moment.strftime("_%S") if self.moment.second else "")

    def iso(self) -> str:
        """``2026-11-30`` or ``2026-11-30T02:00Z`` (what snippets and reports show)."""
        if self.moment is None:
            return self.day.isoformat()
        seconds = ":%S" if self.moment.second else ""
        return self.day.isoformat() + self.moment.strftime(f"T%H:%M{seconds}Z")


def parse_execution_date(text: str) -> LogicalDate:
    """``--execution-date``: ``YYYY-MM-DD`` or an ISO 8601 time; ``ValueError`` otherwise."""
    value = text.strip()
    try:
        if len(value) == 10:
            return LogicalDate(date.fromisoformat(value))
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"expected a date like 2026-11-30 or a time like 2026-11-30T02:00:00Z (got {text!r})"
        ) from None
    utc = parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return LogicalDate._from_utc(utc)


def manifest_identity(manifest_path: str | Path) -> str:
    """What names a manifest in run ids: its file name without the extension.

    The name, not the path: every host and scheduler derives the same id wherever
    the checkout lives, and two manifests never share one unless they share a name.
    """
    return Path(manifest_path).stem


def logical_run_id(process: str, logical: LogicalDate, manifest_path: str | Path | None) -> str:
    """The run id of the logical run ``logical`` of ``process`` (the rule above)."""
    suffix = f"{process}_{logical.token()}"
    if manifest_path is None:
        return suffix
    return f"{manifest_identity(manifest_path)}.{suffix}"
