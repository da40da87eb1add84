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
select alike. The PostgreSQL modules (and psycopg) are imported only when
PostgreSQL is selected, which keeps the file backend's start-up unchanged.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from dpone_core.backends.errors import BackendConfigError
from dpone_core.locks import LocalRunLockManager, LockManager
from dpone_core.redact import redact_url
from dpone_core.state import JobStateStore, LocalJobStateStore

__all__ = [
    "DEFAULT_SCHEMA",
    "DSN_ENV",
    "FILES",
    "POSTGRESQL",
    "SCHEMA_ENV",
    "OrchestrationBackend",
    "select_backend",
]

DSN_ENV = "DPONE_ORCHESTRATION_DSN"
SCHEMA_ENV = "DPONE_ORCHESTRATION_SCHEMA"
DEFAULT_SCHEMA = "dpone"
FILES = "files"
POSTGRESQL = "postgresql"

_URL = re.compile(r"(?i)^(postgres|postgresql)(\+[a-z0-9_]+)?://")
_DSN_DESCRIPTION = (
    "PostgreSQL DSN of the dpone orchestration backend (locks and job states); "
    "keep it in a secret store"
)


@dataclass
class OrchestrationBackend:
    """A lock manager and a job-state store that belong together, and how to describe them."""

    kind: Literal["files", "postgresql"]
    lock_manager: LockManager
    job_state_store: JobStateStore
    #: Where locks and states live, safe to print (never a password).
    location: str
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Close the connections a PostgreSQL backend holds (held locks are not touched)."""
        for closer in self._closers:
            closer()
        self._closers.clear()


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
    lock_dir: str | Path = ".dpone/locks",
    state_dir: str | Path = ".dpone/orchestration-state",
    lock_ttl_seconds: float = 3600.0,
    schema: str | None = None,
    environ: Mapping[str, str] | None = None,
    interrupt_on_lock_loss: bool = True,
) -> OrchestrationBackend:
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
        return OrchestrationBackend(
            kind="files",
            lock_manager=LocalRunLockManager(lock_dir, ttl_seconds=lock_ttl_seconds),
            job_state_store=LocalJobStateStore(state_dir),
            location=f"local files (locks in {lock_dir}, job states in {state_dir})",
        )

    from dpone_core.backends.postgres_connection import PostgresTarget
    from dpone_core.backends.postgres_locks import PostgresRunLockManager, interrupt_main_thread
    from dpone_core.backends.postgres_state import PostgresJobStateStore

    chosen_schema = schema or (env.get(SCHEMA_ENV) or "").strip() or DEFAULT_SCHEMA
    target = PostgresTarget(dsn, chosen_schema)
    handoff_args = ["--backend", POSTGRESQL]
    if chosen_schema != DEFAULT_SCHEMA:
        handoff_args += ["--backend-schema", chosen_schema]
    store = PostgresJobStateStore(target)
    return OrchestrationBackend(
        kind="postgresql",
        lock_manager=PostgresRunLockManager(
            target,
            ttl_seconds=lock_ttl_seconds,
            on_lost=interrupt_main_thread if interrupt_on_lock_loss else None,
            handoff_args=handoff_args,
            handoff_env_refs={DSN_ENV: _DSN_DESCRIPTION},
        ),
        job_state_store=store,
        location=f"{target.describe()} (schema {chosen_schema})",
        _closers=[store.close],
    )
