"""The lease rules both lock backends share: a valid TTL and how often to beat.

A holder refreshes ``heartbeat_at`` three times per TTL (capped, so a long TTL
still shows a fresh heartbeat to operators, and floored, so a tiny TTL cannot
turn the heartbeat into a busy loop). The TTL retires only records whose holder
cannot be checked otherwise; a live holder keeps its key past any TTL.
"""

from __future__ import annotations

import math

__all__ = ["BEATS_PER_TTL", "MIN_HEARTBEAT_INTERVAL", "checked_ttl", "heartbeat_interval"]

BEATS_PER_TTL = 3
MIN_HEARTBEAT_INTERVAL = 0.05


def checked_ttl(ttl_seconds: float) -> float:
    """``ttl_seconds`` as a float; a TTL that is not a positive finite number is a bug."""
    if not (math.isfinite(ttl_seconds) and ttl_seconds > 0):
        raise ValueError(f"ttl_seconds must be a positive number, got {ttl_seconds!r}")
    return float(ttl_seconds)


def heartbeat_interval(ttl_seconds: float, *, cap_seconds: float) -> float:
    """Seconds between two heartbeats of a lease with this TTL."""
    return max(MIN_HEARTBEAT_INTERVAL, min(ttl_seconds / BEATS_PER_TTL, cap_seconds))
