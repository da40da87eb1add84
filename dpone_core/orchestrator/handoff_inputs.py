"""The schedule an invocation hands to other schedulers, made runnable anywhere.

A snippet runs unattended: from cron's home directory with a minimal ``PATH``,
from Airflow's temporary directory, from a pod. So every path it carries is
made absolute here (against the invocation's working directory, which the
snippet also changes into), the dpone executable is named by its absolute path,
the run id is left out (each snippet passes its logical date instead), the
concurrency key is the process's (stable across days) and the evidence goes
under an output root, one directory per run id. This is the edge that reads the
working directory and the interpreter; the builder itself stays pure.
"""

from __future__ import annotations

import os
import sys
from datetime import date
from pathlib import Path

from dpone_core.backends.protocol import BackendSettings
from dpone_core.cli_flags import orchestrate_run_argv
from dpone_core.handoff import HandoffInputs
from dpone_core.logical_run import manifest_identity
from dpone_core.naming import file_safe_name
from dpone_core.orchestrator.request import OrchestratedRunRequest
from dpone_core.orchestrator.target import ProcessTarget
from dpone_core.schedule import DEFAULT_SCHEDULE

__all__ = ["dpone_program", "handoff_inputs", "output_root_of"]


def dpone_program() -> list[str]:
    """The absolute command that starts this dpone (its console script, else ``-m``)."""
    script = Path(sys.executable).parent / "dpone"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "dpone_core.cli"]


def output_root_of(output_dir: Path, run_id: str) -> Path:
    """Where every run's evidence directory goes: the parent of ``<root>/<run id>``.

    An output dir that is not named after the run id is itself the root, so a
    schedule never writes every day's evidence into one directory.
    """
    return output_dir.parent if output_dir.name == file_safe_name(run_id) else output_dir


def _absolute(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(path)


def _stable_key(request: OrchestratedRunRequest, target: ProcessTarget) -> str | None:
    """The key every day's run locks: explicit, the manifest's (no flag), or the process's."""
    if request.concurrency_key is not None:
        return request.concurrency_key
    if target.concurrency_key is not None:
        return None
    return f"{manifest_identity(target.manifest_path)}.{target.process}"


def handoff_inputs(
    request: OrchestratedRunRequest,
    target: ProcessTarget,
    *,
    output_dir: Path,
    run_id: str,
    first_date: date,
    settings: BackendSettings,
) -> HandoffInputs:
    """What :class:`~dpone_core.handoff.SchedulerHandoffBuilder` needs for this process."""
    program = dpone_program()
    root = os.path.abspath(output_root_of(output_dir, run_id))
    lock_dir, state_dir = _absolute(settings.lock_dir), _absolute(settings.state_dir)
    values: dict[str, object] = {
        "manifest_path": os.path.abspath(target.manifest_path),
        "selector": target.process if target.from_manifest else request.selector,
        "retry_attempts": request.retry_attempts,
        "retry_backoff_seconds": float(request.retry_backoff_seconds),
        "concurrency_key": _stable_key(request, target),
        "lock_dir": lock_dir,
        "lock_ttl_seconds": settings.lock_ttl_seconds,
        "state_dir": state_dir,
        "backend": settings.backend,
        "backend_schema": settings.backend_schema,
        "resume_policy": request.resume_policy.value,
        "output_root": root,
    }
    data_dirs = {"locks": lock_dir, "states": state_dir, "evidence": root}
    return HandoffInputs(
        program=program[0],
        argv=[*program[1:], *orchestrate_run_argv(values)],
        name=target.process,
        namespace=manifest_identity(target.manifest_path),
        schedule=request.schedule or target.schedule or DEFAULT_SCHEDULE,
        start_date=first_date,
        env_refs={**target.environment, **settings.env_refs},
        working_dir=os.getcwd(),
        data_dirs={sub: path for sub, path in data_dirs.items() if path is not None},
        dag_id=request.dag_id,
    )

