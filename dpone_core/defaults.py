"""Every default the CLI, the Python API and the Dagster resource share, spelled once.

The CLI's ``--help``, ``select_backend`` and ``DponeResource`` all read these,
so a default can never differ between the ways of running dpone. Importing
this module costs nothing (no third-party imports), which keeps ``--help`` fast.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BACKEND_SCHEMA",
    "LOCK_DIR",
    "LOCK_TTL_SECONDS",
    "ORCHESTRATION_DSN_ENV",
    "ORCHESTRATION_SCHEMA_ENV",
    "OUTPUT_ROOT",
    "REPORT_FORMAT",
    "RESUME_POLICY",
    "STATE_DIR",
]

#: Lock files of the file backend (``--lock-dir``).
LOCK_DIR: Final = ".dpone/locks"
#: Job-state files of the file backend (``--state-dir``).
STATE_DIR: Final = ".dpone/orchestration-state"
#: Evidence goes to ``<OUTPUT_ROOT>/<run id>`` unless ``--output-dir`` says otherwise.
OUTPUT_ROOT: Final = ".dpone/orchestration"
#: Age after which a lock whose holder cannot be checked (another host) is retired.
LOCK_TTL_SECONDS: Final = 3600.0
#: What a previous state of the same run id allows (``fail``, ``resume``, ``restart``).
RESUME_POLICY: Final = "fail"
#: Report format on stdout (``md`` or ``json``).
REPORT_FORMAT: Final = "md"
#: PostgreSQL schema holding the backend's tables.
BACKEND_SCHEMA: Final = "dpone"
#: Environment variable with the PostgreSQL backend's DSN (selects that backend when set).
ORCHESTRATION_DSN_ENV: Final = "DPONE_ORCHESTRATION_DSN"
#: Environment variable naming the backend's schema.
ORCHESTRATION_SCHEMA_ENV: Final = "DPONE_ORCHESTRATION_SCHEMA"
