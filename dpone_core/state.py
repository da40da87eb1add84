"""The documented import path for job states: the model, the file store, the protocol.

The model is :mod:`dpone_core.job_state`, the file store
:mod:`dpone_core.backends.file_state`, the protocol
:mod:`dpone_core.backends.protocol`.
"""

from dpone_core.backends.file_state import LocalJobStateStore
from dpone_core.backends.protocol import JobStateStore
from dpone_core.errors import CorruptJobState
from dpone_core.job_state import (
    SCHEMA_VERSION,
    AttemptHolder,
    JobState,
    Transition,
    admit_attempt,
    advance,
)

__all__ = [
    "SCHEMA_VERSION",
    "AttemptHolder",
    "CorruptJobState",
    "JobState",
    "JobStateStore",
    "LocalJobStateStore",
    "Transition",
    "admit_attempt",
    "advance",
]
