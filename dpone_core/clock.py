"""UTC timestamps in one format for every file and row we write."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["parse_utc", "utc_iso", "utc_now", "utc_now_iso"]


def utc_now() -> datetime:
    return datetime.now(UTC)


def utc_iso(value: datetime) -> str:
    """ISO-8601 with microseconds and an explicit ``Z`` so that files sort and parse alike."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utc_now_iso() -> str:
    return utc_iso(utc_now())


def parse_utc(value: str) -> datetime:
    """Parse a timestamp we wrote; one without a timezone is refused, not guessed."""
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no timezone")
    return parsed
