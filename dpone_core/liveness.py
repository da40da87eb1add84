"""Is a process on this host alive, and is it still the one we recorded?

Both backends record a holder's pid and its start time (``/proc/<pid>/stat``
field 22), so a pid reused by an unrelated process is never mistaken for the
holder. Liveness is never judged by probing a lock: that could make a real
contender fail while we look.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["local_process_alive", "pid_start_time"]

_PROC = Path("/proc")


def _proc_stat(pid: int) -> tuple[str, str]:
    """Return (state, starttime) from ``/proc/<pid>/stat``.

    The command name (field 2) may contain spaces and parentheses, so fields
    are counted from the last ``)``: what follows starts at field 3.
    """
    raw = (_PROC / str(pid) / "stat").read_bytes().decode("utf-8", "replace")
    rest = raw[raw.rindex(")") + 2 :].split()
    return rest[0], rest[22 - 3]


def pid_start_time(pid: int) -> str | None:
    """Start time of ``pid`` (clock ticks since boot), or None where it is unknowable."""
    try:
        return _proc_stat(pid)[1]
    except (OSError, ValueError, IndexError):
        return None


def local_process_alive(pid: int, start_time: str | None) -> bool | None:
    """Is process ``pid`` on *this* host alive and the same process as recorded?

    ``None`` means we cannot tell (e.g. ``/proc`` hides other users'
    processes), which callers must treat as "maybe alive".
    """
    if pid <= 0:
        return False  # os.kill(0, ...) would address our whole process group
    signalable = True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        signalable = False  # exists, owned by someone else
    except OSError:
        return None
    if not _PROC.is_dir():
        return True  # no way to detect pid reuse here
    try:
        state, started = _proc_stat(pid)
    except FileNotFoundError:
        # It existed a moment ago; if we could signal it, it exited since.
        return False if signalable else None
    except (OSError, ValueError, IndexError):
        return True if start_time is None else None
    if state in ("Z", "X"):
        return False  # a zombie has finished; only its exit status remains
    if start_time is None:
        return True
    return started == start_time
