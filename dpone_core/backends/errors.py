"""Errors of the orchestration backends, free of driver imports.

The CLI catches :class:`OrchestrationBackendError` (exit 1: the environment
failed, a retry may help) and :class:`BackendConfigError` (exit 2: the
invocation is wrong) without importing psycopg. Every message is already
redacted when the exception is made: a DSN's password never reaches one.
"""

from __future__ import annotations

from dpone_core.errors import DponeUsageError


class BackendConfigError(DponeUsageError):
    """``--backend``, ``--backend-schema`` or the DSN variable holds an unusable value."""


class OrchestrationBackendError(Exception):
    """The backend could not do what was asked; the message says why (no secrets)."""


class BackendUnavailable(OrchestrationBackendError):
    """The database cannot be reached, or the connection broke mid-operation."""


class BackendSchemaError(OrchestrationBackendError):
    """The backend's tables cannot be created, or were made by a newer dpone."""


class JobStateConflict(OrchestrationBackendError):
    """A state write was refused: the stored state is no longer the one it was derived from.

    This is the compare-and-set of the job-state store: two writers that read
    the same state can never both write their successor of it.
    """


class LeaseLost(JobStateConflict):
    """A state write was refused because its writer no longer holds the key's lease (fencing)."""
