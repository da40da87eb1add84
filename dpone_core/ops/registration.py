"""Register a run result file: read it, describe its artifacts, build the entry, store it once.

The I/O around :func:`~dpone_core.ops.entry.build_entry`, shared by ``dpone ops
run-registry`` and ``dpone orchestrate run --registry``:

- a relative ``manifest_path`` in the result (reports name it as given on the
  command line) is made absolute against the working directory when the file is
  there, so the entry means the same manifest wherever it is read;
- the parent run comes from ``--parent-run``, else from the variables the
  OpenLineage integrations use to pass one down (``OPENLINEAGE_PARENT_ID``, and
  ``OPENLINEAGE_ROOT_PARENT_ID`` for the root), both ``<namespace>/<name>/<run uuid>``;
- an invocation that ran nothing (a refused, ``blocked`` report without a run
  result) is not registered: :attr:`RegistrationOutcome.skipped` says why.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dpone_core.clock import utc_now_iso
from dpone_core.ops.artifacts import Artifact, describe_file, read_artifacts
from dpone_core.ops.entry import (
    ParentRun,
    RegisteredBy,
    RegistryEntry,
    build_entry,
    parse_parent_id,
)
from dpone_core.ops.outcome import RunOutcome, read_outcome
from dpone_core.ops.registry import Registration, RunRegistry

__all__ = [
    "PARENT_ENV",
    "ROOT_PARENT_ENV",
    "RegistrationOutcome",
    "entry_for_result",
    "parent_from",
    "register_run_result",
]

PARENT_ENV = "OPENLINEAGE_PARENT_ID"
ROOT_PARENT_ENV = "OPENLINEAGE_ROOT_PARENT_ID"


@dataclass(frozen=True)
class RegistrationOutcome:
    registration: Registration | None
    #: Why nothing was registered (None when something was).
    skipped: str | None = None


def parent_from(flag: str | None, environ: Mapping[str, str]) -> ParentRun | None:
    """The parent run: ``--parent-run``, else ``OPENLINEAGE_PARENT_ID`` (None without either)."""
    root = (environ.get(ROOT_PARENT_ENV) or "").strip() or None
    if flag:
        return parse_parent_id(flag, "--parent-run", root)
    value = (environ.get(PARENT_ENV) or "").strip()
    return parse_parent_id(value, PARENT_ENV, root) if value else None


def _absolute_manifest(outcome: RunOutcome, override: str | None) -> RunOutcome:
    path = override or outcome.manifest_path
    if path and not os.path.isabs(path) and Path(path).exists():
        path = os.path.abspath(path)
    return outcome.model_copy(update={"manifest_path": path})


def entry_for_result(
    result_path: str,
    *,
    artifacts: dict[str, Artifact],
    parent: ParentRun | None,
    manifest_path: str | None = None,
) -> tuple[RegistryEntry | None, str | None]:
    """(entry, None), or (None, why) for an invocation that ran nothing."""
    outcome, _ = read_outcome(result_path)
    if not outcome.executed:
        return None, (
            f"run {outcome.run_id!r} was not registered: the invocation was refused "
            f"({', '.join(outcome.blockers) or outcome.status}) and ran nothing"
        )
    outcome = _absolute_manifest(outcome, manifest_path)
    entry = build_entry(
        outcome,
        run_result=describe_file(result_path, what="--run-result"),
        artifacts=artifacts,
        parent=parent,
        registered_at=utc_now_iso(),
        registered_by=RegisteredBy(host=socket.gethostname(), pid=os.getpid()),
    )
    return entry, None


def register_run_result(
    registry: RunRegistry,
    result_path: str,
    *,
    artifact_specs: list[str] | None = None,
    parent_flag: str | None = None,
    manifest_path: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> RegistrationOutcome:
    """Register the run result at ``result_path`` with its ``name=path`` artifacts."""
    env = os.environ if environ is None else environ
    artifacts = read_artifacts(artifact_specs or [])
    entry, skipped = entry_for_result(
        result_path,
        artifacts=artifacts,
        parent=parent_from(parent_flag, env),
        manifest_path=manifest_path,
    )
    if entry is None:
        return RegistrationOutcome(registration=None, skipped=skipped)
    return RegistrationOutcome(registration=registry.register(entry))
