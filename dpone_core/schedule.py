"""Cron schedules as dpone reads them: validation and the period of one logical run.

A schedule is carried into every scheduler handoff (cron, Airflow, Dagster,
Kubernetes); all four read the same five-field cron syntax, so one validator
guards them all. The *period* decides how a logical run is named: a schedule
that fires at most once a day names its runs by date (``2026-11-30``), a finer
one by UTC minute (``2026-11-30T02:00``). Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final

__all__ = ["DEFAULT_SCHEDULE", "Period", "check_schedule", "schedule_period"]

#: The schedule of a handoff when neither ``--schedule`` nor the manifest sets one.
DEFAULT_SCHEDULE: Final = "0 2 * * *"

# Numbers, ranges, steps, lists and month/day names: what cron, Kubernetes, Airflow and
# Dagster all read. Quartz extensions (?, L, W, #) are refused: cron and Kubernetes don't.
_NAMES = "JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC|SUN|MON|TUE|WED|THU|FRI|SAT"
_VALUE = rf"(?:[0-9]+|(?i:{_NAMES}))"
_ITEM = rf"(?:\*|{_VALUE}(?:-{_VALUE})?)(?:/[0-9]+)?"
_FIELD = re.compile(rf"{_ITEM}(?:,{_ITEM})*")
_SINGLE_NUMBER = re.compile(r"[0-9]+")
_DAILY_OR_COARSER_MACROS = frozenset(
    {"@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
)
_MACROS = _DAILY_OR_COARSER_MACROS | {"@hourly"}


class Period(StrEnum):
    """How finely a schedule's logical runs are named."""

    DAY = "day"
    MINUTE = "minute"


def check_schedule(value: str) -> str:
    """``value`` normalised to single spaces; ``ValueError`` saying what is expected."""
    fields = value.split()
    macro = len(fields) == 1 and fields[0] in _MACROS
    cron = len(fields) == 5 and all(_FIELD.fullmatch(f) for f in fields)
    if not (macro or cron):
        raise ValueError(
            f"expected a cron expression with five fields like '0 2 * * *' or one of "
            f"{', '.join(sorted(_MACROS))} (got {value!r})"
        )
    return " ".join(fields)


def schedule_period(schedule: str) -> Period:
    """``DAY`` when the schedule fires at most once a day (fixed minute and hour)."""
    fields = check_schedule(schedule).split()
    if len(fields) == 1:
        return Period.DAY if fields[0] in _DAILY_OR_COARSER_MACROS else Period.MINUTE
    minute, hour = fields[0], fields[1]
    daily = _SINGLE_NUMBER.fullmatch(minute) and _SINGLE_NUMBER.fullmatch(hour)
    return Period.DAY if daily else Period.MINUTE
