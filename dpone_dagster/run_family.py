"""Run ids, evidence directories and the Dagster *run family* that ties retries together.

A Dagster run and all its re-executions (from failure, of all steps, run
retries) share one *root run id*; step retries happen inside the run. So:

* run ids are deterministic: ``<prefix>_<logical date>`` for a partition (the
  run-id rule every scheduler follows), ``<prefix>_<root run id>`` otherwise
  (:mod:`dpone_dagster.partitions`), and every kind of Dagster retry reaches the
  same job states;
* the evidence directory is per root run id, and a job state records the one
  that admitted it, so a state *of this family* is recognised by it
  (:func:`previous_in_family`);
* a process already committed in this family is not executed again: its
  committed report is reported again (:func:`committed_report`).
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from dpone_core.errors import CorruptJobState
from dpone_core.evidence import read_latest_report
from dpone_core.naming import file_safe_name
from dpone_core.report import OrchestratedRunReport
from dpone_core.resume import ResumePolicy
from dpone_core.state import JobState, JobStateStore
from dpone_dagster.partitions import PartitionWindow, partitioned_run_id, unpartitioned_run_id

__all__ = [
    "absolute_dir",
    "committed_report",
    "output_dir_for",
    "previous_in_family",
    "root_run_id",
    "run_id_for",
]


def root_run_id(context: dg.AssetExecutionContext) -> str:
    """The id shared by a Dagster run and all its re-executions."""
    return context.run.root_run_id or context.run.run_id


def absolute_dir(directory: str) -> Path:
    """Resolved once per use against the current directory, so evidence paths in metadata
    are absolute and a state's recorded ``output_dir`` compares equal across retries."""
    return Path(directory).expanduser().absolute()


def run_id_for(run_id_prefix: str, window: PartitionWindow | None, root: str) -> str:
    """The logical run id of a process in the run family ``root`` (and partition)."""
    if window is not None:
        return partitioned_run_id(run_id_prefix, window.start)
    return unpartitioned_run_id(run_id_prefix, root)


def output_dir_for(
    output_root: str, run_id: str, window: PartitionWindow | None, root: str
) -> Path:
    """The evidence directory; it also tells which Dagster run family admitted a state.

    A partition's run id outlives Dagster runs, so its evidence goes one level
    deeper, per root run id; an unpartitioned run id already names its family.
    """
    base = absolute_dir(output_root) / file_safe_name(run_id)
    if window is None:
        return base
    return base / f"dagster-{file_safe_name(root)}"


def previous_in_family(store: JobStateStore, run_id: str, output_dir: Path) -> JobState | None:
    """The job state of ``run_id`` if this run family (``output_dir``) admitted it."""
    try:
        previous = store.load(run_id)
    except CorruptJobState:
        return None  # the service reports it (blocked job_state.corrupt) under the lock
    if previous is None or previous.output_dir != str(output_dir):
        return None
    return previous


def committed_report(
    state: JobState, output_dir: Path, store: JobStateStore, policy: ResumePolicy
) -> OrchestratedRunReport:
    """The report of a state committed in this family: its evidence, else rebuilt from it."""
    stored = read_latest_report(output_dir, "committed", run_id=state.run_id)
    return stored or _report_from_state(state, store, policy)


def _report_from_state(
    state: JobState, store: JobStateStore, policy: ResumePolicy
) -> OrchestratedRunReport:
    """A report of a committed state whose evidence files are gone (moved by an operator)."""
    return OrchestratedRunReport.of_committed_state(
        state,
        location=store.location(state.run_id),
        resume_policy=policy.value,
        decision="already committed in this Dagster run; rebuilt from the job state "
        "(the evidence reports were not found)",
    )
