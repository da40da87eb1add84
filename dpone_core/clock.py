"""UTC timestamps in one format for every file we write."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_now_iso() -> str:
    """ISO-8601 with microseconds and an explicit ``Z`` so that files sort and parse alike."""
    return utc_now().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
