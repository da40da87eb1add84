"""Pick where locks and job states live: local files (the default) or PostgreSQL.

``--backend`` takes one of

``files``
    Lock files and state files under ``--lock-dir`` / ``--state-dir``: one
    host, one CI runner, or hosts sharing one directory.
``postgresql``
    The PostgreSQL backend, DSN read from ``DPONE_ORCHESTRATION_DSN`` (which
    must then be set). This is what scheduler handoffs use: they refer to the
    variable by name, never to its value.
``postgresql://...`` (or ``postgres://``)
    The PostgreSQL backend with this DSN. Convenient by hand, but the DSN is
    then visible in the process list; prefer the variable.

Without ``--backend``, a non-empty ``DPONE_ORCHESTRATION_DSN`` selects
PostgreSQL, otherwise files. The schema holding dpone's tables comes from
``--backend-schema``, else ``DPONE_ORCHESTRATION_SCHEMA``, else ``dpone``.

Only this module decides, so the CLI, the Python API and the Dagster resource
select alike. Callers get a :class:`SelectedBackend`, which they use only
through the :class:`~dpone_core.backends.protocol.OrchestrationBackend`
protocol. The PostgreSQL modules (and psycopg) are imported only when
PostgreSQL is selected, which keeps the file backend's start-up unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dpone_core import defaults
from dpone_core.backends.protocol import BackendSettings, JobStateStore, LockManager
from dpone_core.errors import BackendConfigError
from dpone_core.redact import redact_url

__all__ = [
    "DEFAULT_SCHEMA",
    "DSN_ENV",
    "FILES",
    "POSTGRESQL",
    "SCHEMA_ENV",
    "OrchestrationBackend",
    "SelectedBackend",
    "select_backend",
]

DSN_ENV = defaults.ORCHESTRATION_DSN_ENV
SCHEMA_ENV = defaults.ORCHESTRATION_SCHEMA_ENV
DEFAULT_SCHEMA = defaults.BACKEND_SCHEMA
FILES = "files"
POSTGRESQL = "postgresql"

_URL = re.compile(r"(?i)^(postgres|postgresql)(\+[a-z0-9_]+)?://")
_DSN_DESCRIPTION = (
    "PostgreSQL DSN of the dpone orchestration backend (locks and job states); "
    "keep it in a secret store"
)


@dataclass
class SelectedBackend:
    """A lock manager and a job-state store that belong together (an ``OrchestrationBackend``)."""

    #: ``files`` or ``postgresql``: a label for people; callers never branch on it.
    kind: str
    lock_manager: LockManager
    job_state_store: JobStateStore
    #: Where locks and states live, safe to print (never a password).
    location: str
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def describe(self) -> str:
        return self.location

    def handoff_settings(self) -> BackendSettings:
        """What a scheduler's ``dpone orchestrate run`` needs to use this same backend."""
        return self.lock_manager.handoff_settings().merged(
            self.job_state_store.handoff_settings()
        )

    def close(self) -> None:
        """Close the connections the backend holds (held locks are not touched)."""
        for closer in self._closers:
            closer()
        self._closers.clear()


#: The pre-0.2 name of :class:`SelectedBackend`.
OrchestrationBackend = SelectedBackend


def _resolve_dsn(backend: str | None, environ: Mapping[str, str]) -> str | None:
    """The DSN to use, or None for files; raises BackendConfigError on a bad value."""
    from_env = (environ.get(DSN_ENV) or "").strip()
    if backend is None or not backend.strip():
        return from_env or None
    value = backend.strip()
    if value == FILES:
        return None
    if value.lower() in (POSTGRESQL, "postgres"):
        if not from_env:
            raise BackendConfigError(
                f"--backend {value} reads the DSN from the environment variable {DSN_ENV}, "
                "which is not set"
            )
        return from_env
    match = _URL.match(value)
    if match:
        # A SQLAlchemy-style URL (postgresql+psycopg://) names a driver; libpq does not.
        return "postgresql://" + value[match.end() :]
    raise BackendConfigError(
        f"--backend {redact_url(value)!r} is not a backend: expected 'files', 'postgresql' "
        f"(DSN from {DSN_ENV}) or a postgresql:// URL"
    )


def select_backend(
    backend: str | None = None,
    *,
    lock_dir: str | Path = defaults.LOCK_DIR,
    state_dir: str | Path = defaults.STATE_DIR,
    lock_ttl_seconds: float = defaults.LOCK_TTL_SECONDS,
    schema: str | None = None,
    environ: Mapping[str, str] | None = None,
    interrupt_on_lock_loss: bool = True,
) -> SelectedBackend:
    """Build the lock manager and job-state store that ``backend`` names.

    ``schema`` applies to PostgreSQL only (passing it with files is an error).
    ``interrupt_on_lock_loss`` makes a PostgreSQL lock that loses its session
    send SIGTERM to the main thread when a Python handler is installed (see
    :func:`dpone_core.backends.postgres_locks.interrupt_main_thread`); turn it
    off in processes that must never receive one, and rely on fencing alone.
    """
    env = os.environ if environ is None else environ
    dsn = _resolve_dsn(backend, env)
    if dsn is None:
        if schema is not None:
            raise BackendConfigError(
                "--backend-schema applies to the PostgreSQL backend only; this invocation "
                f"uses local files (set --backend postgresql or {DSN_ENV})"
            )
        from dpone_core.backends.file_locks import LocalRunLockManager
        from dpone_core.backends.file_state import LocalJobStateStore

        file_store = LocalJobStateStore(state_dir)
        return SelectedBackend(
            kind=FILES,
            lock_manager=LocalRunLockManager(lock_dir, ttl_seconds=lock_ttl_seconds),
            job_state_store=file_store,
            location=f"local files (locks in {lock_dir}, job states in {state_dir})",
            _closers=[file_store.close],
        )

    from dpone_core.backends.postgres_connection import PostgresTarget
    from dpone_core.backends.postgres_locks import PostgresRunLockManager, interrupt_main_thread
    from dpone_core.backends.postgres_state import PostgresJobStateStore

    chosen_schema = schema or (env.get(SCHEMA_ENV) or "").strip() or DEFAULT_SCHEMA
    target = PostgresTarget(dsn, chosen_schema)
    # Handoffs name the backend and the variable, never the DSN's value.
    settings = BackendSettings(
        backend=POSTGRESQL,
        backend_schema=chosen_schema if chosen_schema != DEFAULT_SCHEMA else None,
        env_refs={DSN_ENV: _DSN_DESCRIPTION},
    )
    store = PostgresJobStateStore(target, settings=settings)
    return SelectedBackend(
        kind=POSTGRESQL,
        lock_manager=PostgresRunLockManager(
            target,
            ttl_seconds=lock_ttl_seconds,
            on_lost=interrupt_main_thread if interrupt_on_lock_loss else None,
            settings=settings,
        ),
        job_state_store=store,
        location=f"{target.describe()} (schema {chosen_schema})",
        _closers=[store.close],
    )
