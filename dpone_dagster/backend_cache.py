"""One orchestration backend per configuration and process, shared by every step.

A backend (lock manager plus job-state store, from
:func:`dpone_core.backends.selection.select_backend`) may hold connections (the
PostgreSQL one does), so a run worker keeps one per configuration instead of
one per step or per process, and closes them at exit. Which backend is used is
``select_backend``'s decision alone; this module never looks at its kind.
"""

from __future__ import annotations

import atexit
import threading
from typing import Protocol

import dagster as dg

from dpone_core.backends.selection import select_backend
from dpone_core.errors import BackendConfigError
from dpone_core.locks import LockManager
from dpone_core.state import JobStateStore

__all__ = ["Backend", "BackendSettings", "close_shared_backends", "shared_backend"]


class Backend(Protocol):
    """What the adapter uses of a selected backend."""

    @property
    def lock_manager(self) -> LockManager: ...

    @property
    def job_state_store(self) -> JobStateStore: ...

    @property
    def location(self) -> str: ...

    def close(self) -> None: ...


#: ``(backend, lock_dir, state_dir, lock_ttl_seconds)``: what selects and configures one.
BackendSettings = tuple[str | None, str, str, float]

_BACKENDS: dict[BackendSettings, Backend] = {}
_BACKENDS_LOCK = threading.Lock()


def shared_backend(settings: BackendSettings) -> Backend:
    """The backend for ``settings``, made on first use in this process.

    An unusable configuration (``BackendConfigError``) fails the step without
    retries: the same configuration fails the same way again.
    """
    with _BACKENDS_LOCK:
        found = _BACKENDS.get(settings)
        if found is None:
            backend, lock_dir, state_dir, ttl = settings
            try:
                found = select_backend(
                    backend, lock_dir=lock_dir, state_dir=state_dir, lock_ttl_seconds=ttl
                )
            except BackendConfigError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            if not _BACKENDS:
                atexit.register(close_shared_backends)
            _BACKENDS[settings] = found
        return found


def close_shared_backends() -> None:
    """Close every shared backend (registered with ``atexit`` on first use)."""
    with _BACKENDS_LOCK:
        for backend in _BACKENDS.values():
            backend.close()
        _BACKENDS.clear()
