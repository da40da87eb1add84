"""The orchestrator: one process run under a lock, a job state, a resume policy, with evidence.

Not to be confused with the executor (:mod:`dpone_core.executor`), which runs
a process once and knows nothing of locks or states. Steps, one module each:
``invocation`` (names, handoff, report), ``admission`` (under the lock: plan
and admit), ``attempt`` (execute, then end the attempt), ``service`` (the
public entry point). See docs/architecture.md.
"""

from dpone_core.orchestrator.interrupts import InvalidInputAfterAdmission, OrchestrationInterrupted
from dpone_core.orchestrator.invocation import default_output_dir
from dpone_core.orchestrator.request import (
    OrchestratedRunRequest,
    RestartGuard,
    RunExecutor,
    RunOutcome,
)
from dpone_core.orchestrator.service import OrchestratedRunService

__all__ = [
    "InvalidInputAfterAdmission",
    "OrchestratedRunRequest",
    "OrchestratedRunService",
    "OrchestrationInterrupted",
    "RestartGuard",
    "RunExecutor",
    "RunOutcome",
    "default_output_dir",
]
