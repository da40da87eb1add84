"""Barrier for racing `dpone` processes: import the CLI first, then run it at one instant.

Usage: python cli_at.py <ready file> <go file> <dpone arguments...>
Imports everything the run path needs, creates <ready file>, waits (at most
120 s) for <go file> to appear, then exits with what ``dpone <arguments>``
returns. Unlike exec_at.py, which execs a fresh interpreter at a fixed time,
nothing is left to import after the start: a cold CLI start costs most of a
second of CPU, which on a small or busy machine spreads sixteen
"simultaneous" racers out over seconds so that they run one after another.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dpone_core.cli import main

# Warm only: a module that moved is simply not preloaded.
for module in (
    "dpone_core.run",
    "dpone_core.executor",
    "dpone_core.backends.selection",
    "psycopg",
    "dpone_core.backends.postgres_locks",
    "dpone_core.backends.postgres_state",
):
    with contextlib.suppress(ImportError):
        importlib.import_module(module)

ready, go = Path(sys.argv[1]), Path(sys.argv[2])
ready.touch()
deadline = time.monotonic() + 120
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit(f"cli_at: {go} never appeared")
    time.sleep(0.001)
sys.exit(main(sys.argv[3:]))
