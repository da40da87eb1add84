"""Test-only crash points: ``DPONE_TEST_CRASH_AT`` makes a load kill itself with SIGKILL.

This exists so that tests can reproduce ``kill -9`` at the two moments that matter
for exactly-once publication, deterministically:

* ``after_staging`` -- every row is in the staging table, nothing is published yet
  (the load transaction is still open, so the kill rolls it back);
* ``after_publish`` -- the publish transaction (target rows + ledger row) has
  committed, but the caller has not recorded anything yet (the job state still
  says ``running``).

Never set it in production: the process dies without cleanup, as intended.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

__all__ = ["CRASH_ENV", "CRASH_POINTS", "crash_point"]

CRASH_ENV = "DPONE_TEST_CRASH_AT"
CRASH_POINTS = ("after_staging", "after_publish")


def crash_point(name: str) -> None:
    """SIGKILL this process if ``DPONE_TEST_CRASH_AT`` equals ``name`` (tests only)."""
    if os.environ.get(CRASH_ENV) != name:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))
