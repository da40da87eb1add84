"""Take a key through the public backend API, then die without releasing it, as a crash would.

Usage: python crashed_holder.py <files|postgresql> <key> <run id> [lock dir] [schema]
The PostgreSQL DSN comes from DPONE_ORCHESTRATION_DSN. What is left behind is
each backend's own trace of a dead holder: the file backend's holder record
naming a pid that no longer exists, or PostgreSQL's lease row still marked
held whose session is gone.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dpone_core.backends.selection import select_backend

kind, key, run_id = sys.argv[1:4]
lock_dir = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else ".dpone/locks"
schema = sys.argv[5] if len(sys.argv) > 5 and sys.argv[5] else None
backend = select_backend(kind, lock_dir=lock_dir, schema=schema, interrupt_on_lock_loss=False)
outcome = backend.lock_manager.acquire(key, run_id=run_id)
if not outcome.acquired:
    print(outcome.message, file=sys.stderr, flush=True)
    os._exit(1)
os._exit(0)
