"""Every error dpone raises, under one root, :class:`DponeError`.

The tree is what callers branch on (see docs/architecture.md, "Errors"):

- :class:`DponeUsageError`: the invocation or its input is invalid; retrying
  cannot help. The CLI prints it as one line and exits 2. Each message names
  the file, the field and what was expected.
- :class:`OrchestrationBackendError`: the lock/state backend could not do what
  was asked (unreachable, schema, a refused write); exit 1, a retry may help.
  :class:`JobStateConflict` is the compare-and-set refusal every job-state
  store raises when the state changed since it was loaded.
- :class:`CorruptJobState`: a stored state cannot be trusted; callers fail closed.
- :class:`TransferFailed`: a load could not complete (becomes a failed result).
- :class:`IllegalTransition`: a lifecycle bug, never an operator's problem.

Signals are not errors: :class:`dpone_core.signals.TerminationSignal` and
:class:`dpone_core.orchestrator.OrchestrationInterrupted` derive from
``BaseException`` like ``KeyboardInterrupt``, so no ``except Exception`` can
swallow a scheduler's stop request.

Every message is redacted where it is made: no password reaches one.
"""

from __future__ import annotations

__all__ = [
    "BackendConfigError",
    "BackendSchemaError",
    "BackendUnavailable",
    "CorruptJobState",
    "DponeError",
    "DponeUsageError",
    "IllegalTransition",
    "JobStateConflict",
    "LeaseLost",
    "ManifestError",
    "OrchestrationBackendError",
    "TransferFailed",
]


class DponeError(Exception):
    """The root of every error dpone raises on purpose."""


class DponeUsageError(DponeError):
    """The invocation or its input is invalid; retrying cannot help (CLI exit 2)."""


class ManifestError(DponeUsageError):
    """A manifest is missing, unparsable or does not match the format."""

    def __init__(self, file: str, field: str, expected: str) -> None:
        self.file = file
        self.field = field
        self.expected = expected
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {expected}")


class BackendConfigError(DponeUsageError):
    """``--backend``, ``--backend-schema`` or the DSN variable holds an unusable value."""


class OrchestrationBackendError(DponeError):
    """The backend could not do what was asked; the message says why (no secrets)."""


class BackendUnavailable(OrchestrationBackendError):
    """The database cannot be reached, or the connection broke mid-operation."""


class BackendSchemaError(OrchestrationBackendError):
    """The backend's tables cannot be created, or were made by a newer dpone."""


class JobStateConflict(OrchestrationBackendError):
    """A state write was refused: the stored state is no longer the one it was derived from.

    This is the compare-and-set of every job-state store: two writers that read
    the same state can never both write their successor of it.
    """


class LeaseLost(JobStateConflict):
    """A state write was refused because its writer no longer holds the key's lease (fencing)."""


class CorruptJobState(DponeError):
    """The stored state exists but cannot be trusted; callers must fail closed."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class TransferFailed(DponeError):
    """A load could not complete; the message is already readable and redacted."""

    def __init__(self, message: str) -> None:
        from dpone_core.redact import redact

        super().__init__(redact(message))


class IllegalTransition(DponeError, RuntimeError):
    """A code path tried to move a job state where the lifecycle forbids; always a bug."""
