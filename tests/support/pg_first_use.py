"""One of many processes that use a fresh PostgreSQL schema for the first time, at one instant.

Usage: python pg_first_use.py <schema> <unix time>
The DSN comes from DPONE_ORCHESTRATION_DSN. Everything is imported and the
connection is open before the barrier, so all processes reach
``ensure_schema`` within a millisecond or so of each other (a CLI process
would spend a few hundred milliseconds importing first, which spreads a
"simultaneous" start out over seconds on a small machine).
Exits 0 and prints the installed version, or exits 1 with the error.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from dpone_core.backends.postgres_connection import PostgresTarget
from dpone_core.backends.postgres_schema import ensure_schema

target = PostgresTarget(os.environ["DPONE_ORCHESTRATION_DSN"], sys.argv[1])
conn = target.connect(purpose="first use")
when = float(sys.argv[2])
while (left := when - time.time()) > 0:
    time.sleep(min(left, 0.001))
try:
    ensure_schema(conn, target)
except Exception as exc:
    print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(1)
row = conn.execute(f"SELECT max(version) FROM {sys.argv[1]}.schema_version".encode()).fetchone()
print(row[0] if row else None)
