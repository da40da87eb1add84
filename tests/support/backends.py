"""Both lock and job-state backends for one test, and what each needs done behind its back.

A :class:`BackendSite` says where one test's locks and job states live
(private lock and state directories, or a private PostgreSQL schema), so that
the test process, a second "writer" in it and CLI subprocesses all reach the
same backend: :meth:`BackendSite.open` builds it through the public
``select_backend``, :meth:`BackendSite.cli_args` / :attr:`BackendSite.env`
select it on a ``dpone`` command line.

A :class:`FaultInjector` does what no caller of the public API can do: leave a
dead holder's trace on a key, corrupt a stored job state, and read a state's
raw bytes (or rows) to prove that nothing rewrote it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpone_core.backends.selection import DSN_ENV, select_backend
from tests.support.workspace import SUPPORT

FILES = "files"
POSTGRESQL = "postgresql"
BACKENDS = (FILES, POSTGRESQL)

CRASHED_HOLDER = str(SUPPORT / "crashed_holder.py")


@dataclass
class BackendSite:
    """Where one test's locks and job states live, for every process of the test."""

    kind: str
    root: Path
    #: The private PostgreSQL schema (PostgreSQL only).
    schema: str | None = None

    @property
    def lock_dir(self) -> Path:
        return self.root / ".dpone" / "locks"

    @property
    def state_dir(self) -> Path:
        return self.root / ".dpone" / "orchestration-state"

    @property
    def env(self) -> dict[str, str]:
        """Environment for subprocesses (and for ``select_backend``)."""
        if self.kind == POSTGRESQL:
            from tests.support.pg import TEST_DSN

            return {DSN_ENV: TEST_DSN}
        return {DSN_ENV: ""}

    def open(self) -> Any:
        """A new backend object (lock manager + job-state store); close() it when done."""
        return select_backend(
            self.kind,
            lock_dir=self.lock_dir,
            state_dir=self.state_dir,
            schema=self.schema,
            environ=self.env,
        )

    def cli_args(self) -> list[str]:
        """``dpone orchestrate`` arguments that select this backend (with :attr:`env`)."""
        if self.kind == POSTGRESQL:
            assert self.schema is not None
            return ["--backend", POSTGRESQL, "--backend-schema", self.schema]
        return [
            "--backend",
            FILES,
            "--lock-dir",
            str(self.lock_dir),
            "--state-dir",
            str(self.state_dir),
        ]

    def load(self, run_id: str) -> Any:
        """The stored job state of ``run_id``, read by a fresh backend (None if none)."""
        backend = self.open()
        try:
            return backend.job_state_store.load(run_id)
        finally:
            backend.close()

    def faults(self) -> FaultInjector:
        return PostgresFaults(self) if self.kind == POSTGRESQL else FileFaults(self)


class FaultInjector:
    """What a test does to a backend behind its back."""

    def __init__(self, site: BackendSite) -> None:
        self.site = site

    def plant_stale_holder(self, key: str, run_id: str = "ghost") -> None:
        """Leave ``key`` held by a holder that died (a real process, killed mid-hold)."""
        site = self.site
        proc = subprocess.run(
            [
                sys.executable,
                CRASHED_HOLDER,
                site.kind,
                key,
                run_id,
                str(site.lock_dir),
                site.schema or "",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, **site.env},
        )
        assert proc.returncode == 0, proc.stderr
        self.wait_until_holder_gone(key)

    def wait_until_holder_gone(self, key: str, timeout: float = 10.0) -> None:
        """Return once the backend itself can tell that the holder of ``key`` died."""

    def corrupt_state(self, run_id: str) -> None:
        raise NotImplementedError

    def raw_state(self, run_id: str) -> object:
        """The stored state of ``run_id`` exactly as stored (None if there is none)."""
        raise NotImplementedError


class FileFaults(FaultInjector):
    """Local files: a crashed holder's OS lock is gone at once; states are plain files."""

    def _path(self, run_id: str) -> Path:
        backend = self.site.open()
        path: Path = backend.job_state_store.path_for(run_id)
        backend.close()
        return path

    def corrupt_state(self, run_id: str) -> None:
        path = self._path(run_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'{"run_id": "' + run_id.encode() + b'", "status": "comm\x00\xff')

    def raw_state(self, run_id: str) -> bytes | None:
        path = self._path(run_id)
        return path.read_bytes() if path.exists() else None


class PostgresFaults(FaultInjector):
    """PostgreSQL: a lease row outlives its session; a state is a row plus transition rows."""

    def _query(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        from tests.support.pg import query

        return query(statement.replace("{schema}", f'"{self.site.schema}"'), *params)

    def wait_until_holder_gone(self, key: str, timeout: float = 10.0) -> None:
        # The server ends a dead client's session (and frees its advisory lock)
        # as soon as it sees the socket close: a few milliseconds, not zero.
        deadline = time.monotonic() + timeout
        while self._query(
            "SELECT 1 FROM {schema}.run_locks l JOIN pg_stat_activity a "
            "ON a.pid = l.backend_pid WHERE l.key = %s",
            key,
        ):
            assert time.monotonic() < deadline, f"the session holding {key!r} never ended"
            time.sleep(0.01)

    def corrupt_state(self, run_id: str) -> None:
        backend = self.site.open()
        try:
            backend.job_state_store.load(run_id)  # creates the tables on first use
        finally:
            backend.close()
        self._query(
            "INSERT INTO {schema}.job_states (run_id, status, attempt, transition_count, "
            "lock_key, updated_at, document) VALUES (%s, 'committed', 1, 0, %s, now(), %s::jsonb)",
            run_id,
            run_id,
            json.dumps({"run_id": run_id, "status": "comm"}),
        )

    def raw_state(self, run_id: str) -> object:
        [(exists,)] = self._query(
            "SELECT to_regclass(%s) IS NOT NULL", f"{self.site.schema}.job_states"
        )
        if not exists:
            return None
        rows = self._query(
            "SELECT row_to_json(s)::text, (SELECT coalesce(json_agg(t ORDER BY t.seq)::text, '') "
            "FROM {schema}.job_state_transitions t WHERE t.run_id = s.run_id) "
            "FROM {schema}.job_states s WHERE s.run_id = %s",
            run_id,
        )
        return rows[0] if rows else None


# -- running the orchestrator against a backend ---------------------------------------------


def command_manifest(root: Path, name: str, *recorder_args: str, process: str = "job") -> Path:
    """A manifest whose one process is a recorder command appending to ``root/record.txt``."""
    from tests.support.workspace import Workspace, recorder_command

    command = recorder_command("--record", str(root / "record.txt"), *recorder_args)
    return Workspace(root).write_manifest(
        {process: {"kind": "command", "command": command}}, name=name
    )


def executions(root: Path) -> list[list[str]]:
    """One ``[run id, job attempt, try, pid]`` per execution of a recorder command."""
    path = root / "record.txt"
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def orchestrated_service(backend: Any, run_executor: Any = None) -> Any:
    """``OrchestratedRunService`` over ``backend``, running manifests for real by default."""
    import io

    from dpone_core.executor import RunManifestService
    from dpone_core.handoff import SchedulerHandoffBuilder
    from dpone_core.run import OrchestratedRunService

    return OrchestratedRunService(
        lock_manager=backend.lock_manager,
        handoff_builder=SchedulerHandoffBuilder(),
        run_executor=run_executor or RunManifestService(progress=io.StringIO()).execute,
        job_state_store=backend.job_state_store,
    )
