"""The documented import path for the orchestrator (:mod:`dpone_core.orchestrator`).

``from dpone_core.run import OrchestratedRunRequest, OrchestratedRunService`` keeps working.
"""

from dpone_core.defaults import OUTPUT_ROOT as DEFAULT_OUTPUT_ROOT
from dpone_core.orchestrator import (
    InvalidInputAfterAdmission,
    OrchestratedRunRequest,
    OrchestratedRunService,
    OrchestrationInterrupted,
    RunExecutor,
    RunOutcome,
    default_output_dir,
)

__all__ = [
    "DEFAULT_OUTPUT_ROOT",
    "InvalidInputAfterAdmission",
    "OrchestratedRunRequest",
    "OrchestratedRunService",
    "OrchestrationInterrupted",
    "RunExecutor",
    "RunOutcome",
    "default_output_dir",
]
