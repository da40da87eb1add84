"""One invocation of the orchestrator: its resolved names, its handoff, its report.

An *invocation* is one call of ``OrchestratedRunService.run`` (one
``dpone orchestrate run``), admitted or refused; an *attempt* is an admitted
one, recorded in the job state. Every invocation ends in exactly one report,
written as immutable evidence by :meth:`Invocation.finish`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpone_core import defaults
from dpone_core.backends.protocol import JobStateStore, LockAcquisition
from dpone_core.blockers import BlockerDetail
from dpone_core.clock import utc_now_iso
from dpone_core.errors import CorruptJobState
from dpone_core.evidence import plan_evidence, write_evidence
from dpone_core.job_state import JobState
from dpone_core.naming import file_safe_name
from dpone_core.orchestrator.request import OrchestratedRunRequest
from dpone_core.report import OrchestratedRunReport

__all__ = ["Invocation", "default_output_dir"]


def default_output_dir(run_id: str, root: str | Path = defaults.OUTPUT_ROOT) -> str:
    """``<root>/<run id>``: one evidence directory per run id."""
    return f"{root}/{file_safe_name(run_id)}"


@dataclass
class Invocation:
    """The working values of one invocation; ``request`` has run id and selector resolved."""

    request: OrchestratedRunRequest
    run_id: str
    process: str
    lock_key: str
    output_dir: Path
    store: JobStateStore
    handoff: dict[str, Any]
    started: float = field(default_factory=time.monotonic)
    started_at: str = field(default_factory=utc_now_iso)
    acquisition: LockAcquisition | None = None
    decision_message: str = ""

    def peek_state(self) -> JobState | None:
        """The stored state for a refusal's report (None when unreadable)."""
        try:
            return self.store.load(self.run_id)
        except CorruptJobState:
            return None

    def finish(
        self,
        status: str,
        details: list[BlockerDetail],
        state: JobState | None,
        run_result: dict[str, Any] | None,
    ) -> OrchestratedRunReport:
        """Build this invocation's report and write it as evidence."""
        paths = plan_evidence(self.output_dir, status)
        acquisition = self.acquisition
        replaced = acquisition.replaced_holder if acquisition else None
        report = OrchestratedRunReport(
            passed=status == "committed",
            status=status,
            run_id=self.run_id,
            process=self.process,
            selector=self.request.selector,
            manifest_path=self.request.manifest_path,
            lock_key=self.lock_key,
            lock_acquired=bool(acquisition and acquisition.acquired),
            stale_lock_replaced=bool(acquisition and acquisition.stale_lock_replaced),
            replaced_holder=replaced.model_dump(mode="json") if replaced is not None else None,
            resume_policy=self.request.resume_policy.value,
            decision=self.decision_message,
            blockers=[d.code for d in details],
            blocker_details=details,
            run_result=run_result,
            scheduler_handoff=self.handoff,
            job_state=state.to_dict() if state else None,
            job_state_path=self.store.location(self.run_id),
            output_dir=str(self.output_dir),
            evidence=paths.as_dict(),
            started_at=self.started_at,
            finished_at=utc_now_iso(),
            duration_seconds=round(time.monotonic() - self.started, 6),
        )
        try:
            write_evidence(paths, report)
        except OSError as exc:
            # The run's outcome stands (and its state is recorded); only its evidence
            # is missing, which the caller reports by the path.
            why = exc.strerror or str(exc)
            error = f"could not write the evidence to {paths.invocation_dir}: {why}"
            return report.model_copy(update={"evidence_error": error})
        return report
