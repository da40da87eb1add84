"""The documented import path for locks: the file backend and the lock protocol.

The implementation is :mod:`dpone_core.backends.file_locks`; the protocol and
its value types are :mod:`dpone_core.backends.protocol`.
"""

from dpone_core.backends.file_locks import LocalRunLockManager, RunLock
from dpone_core.backends.protocol import (
    HeldLock,
    LockAcquisition,
    LockHolder,
    LockManager,
    LockState,
    LockStatus,
)
from dpone_core.blockers import LOCK_CONCURRENT_RUN, LOCK_CORRUPT
from dpone_core.liveness import local_process_alive, pid_start_time

__all__ = [
    "LOCK_CONCURRENT_RUN",
    "LOCK_CORRUPT",
    "HeldLock",
    "LocalRunLockManager",
    "LockAcquisition",
    "LockHolder",
    "LockManager",
    "LockState",
    "LockStatus",
    "RunLock",
    "local_process_alive",
    "pid_start_time",
]
