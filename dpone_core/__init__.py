"""dpone_core: the orchestration engine behind ``dpone`` (never imports Dagster).

The public API is listed in ``__all__`` and importable from here::

    from dpone_core import OrchestratedRunService, OrchestratedRunRequest, select_backend

Names are resolved on first use (PEP 562), so ``import dpone_core`` stays cheap
and ``dpone --help`` never loads pydantic, PyYAML or a database driver. The
documented deep import paths (``dpone_core.run``, ``dpone_core.locks``, ...)
keep working. See docs/architecture.md for what each module is.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    # orchestrator
    "OrchestratedRunService": "dpone_core.orchestrator",
    "OrchestratedRunRequest": "dpone_core.orchestrator",
    "OrchestrationInterrupted": "dpone_core.orchestrator",
    "InvalidInputAfterAdmission": "dpone_core.orchestrator",
    "RunExecutor": "dpone_core.orchestrator",
    "RunOutcome": "dpone_core.orchestrator",
    "OrchestratedRunReport": "dpone_core.report",
    "ResumePolicy": "dpone_core.resume",
    "ResumePolicyPlanner": "dpone_core.resume",
    "SchedulerHandoffBuilder": "dpone_core.handoff",
    "read_latest_report": "dpone_core.evidence",
    # executor
    "RunManifestService": "dpone_core.executor",
    "RunRequest": "dpone_core.executor.request",
    "RunResult": "dpone_core.executor.results",
    "load_manifest": "dpone_core.manifest",
    # backends
    "select_backend": "dpone_core.backends.selection",
    "LocalRunLockManager": "dpone_core.backends.file_locks",
    "LocalJobStateStore": "dpone_core.backends.file_state",
    "BackendSettings": "dpone_core.backends.protocol",
    "HeldLock": "dpone_core.backends.protocol",
    "LockManager": "dpone_core.backends.protocol",
    "JobStateStore": "dpone_core.backends.protocol",
    "OrchestrationBackend": "dpone_core.backends.protocol",
    "JobState": "dpone_core.job_state",
    "JobStatus": "dpone_core.lifecycle",
    # errors
    "DponeError": "dpone_core.errors",
    "DponeUsageError": "dpone_core.errors",
    "ManifestError": "dpone_core.errors",
    "OrchestrationBackendError": "dpone_core.errors",
    "JobStateConflict": "dpone_core.errors",
    "CorruptJobState": "dpone_core.errors",
}

# Spelled out for linters and IDEs; a test keeps it equal to _EXPORTS.
__all__ = [
    "BackendSettings",
    "CorruptJobState",
    "DponeError",
    "DponeUsageError",
    "HeldLock",
    "InvalidInputAfterAdmission",
    "JobState",
    "JobStateConflict",
    "JobStateStore",
    "JobStatus",
    "LocalJobStateStore",
    "LocalRunLockManager",
    "LockManager",
    "ManifestError",
    "OrchestratedRunReport",
    "OrchestratedRunRequest",
    "OrchestratedRunService",
    "OrchestrationBackend",
    "OrchestrationBackendError",
    "OrchestrationInterrupted",
    "ResumePolicy",
    "ResumePolicyPlanner",
    "RunExecutor",
    "RunManifestService",
    "RunOutcome",
    "RunRequest",
    "RunResult",
    "SchedulerHandoffBuilder",
    "load_manifest",
    "read_latest_report",
    "select_backend",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'dpone_core' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


if TYPE_CHECKING:
    from dpone_core.backends.file_locks import LocalRunLockManager
    from dpone_core.backends.file_state import LocalJobStateStore
    from dpone_core.backends.protocol import (
        BackendSettings,
        HeldLock,
        JobStateStore,
        LockManager,
        OrchestrationBackend,
    )
    from dpone_core.backends.selection import select_backend
    from dpone_core.errors import (
        CorruptJobState,
        DponeError,
        DponeUsageError,
        JobStateConflict,
        ManifestError,
        OrchestrationBackendError,
    )
    from dpone_core.evidence import read_latest_report
    from dpone_core.executor import RunManifestService
    from dpone_core.executor.request import RunRequest
    from dpone_core.executor.results import RunResult
    from dpone_core.handoff import SchedulerHandoffBuilder
    from dpone_core.job_state import JobState
    from dpone_core.lifecycle import JobStatus
    from dpone_core.manifest import load_manifest
    from dpone_core.orchestrator import (
        InvalidInputAfterAdmission,
        OrchestratedRunRequest,
        OrchestratedRunService,
        OrchestrationInterrupted,
        RunExecutor,
        RunOutcome,
    )
    from dpone_core.report import OrchestratedRunReport
    from dpone_core.resume import ResumePolicy, ResumePolicyPlanner
