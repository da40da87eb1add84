"""Errors of the orchestration backends (defined in :mod:`dpone_core.errors`, re-exported here).

The CLI catches them without importing psycopg.
"""

from __future__ import annotations

from dpone_core.errors import (
    BackendConfigError,
    BackendSchemaError,
    BackendUnavailable,
    JobStateConflict,
    LeaseLost,
    OrchestrationBackendError,
)

__all__ = [
    "BackendConfigError",
    "BackendSchemaError",
    "BackendUnavailable",
    "JobStateConflict",
    "LeaseLost",
    "OrchestrationBackendError",
]
