"""OrchestratedRunService: lock -> admit -> execute -> end the attempt -> evidence.

Admission is decided under the lock: acquire the key, re-read the job state,
plan by the resume policy, and only then transition (a compare-and-set). A
contender that looked at the state before a holder committed can therefore
never execute after it. Only the lock holder writes a run's state; refused
invocations write evidence of their own but never touch the state they were
refused for. See docs/architecture.md, "The orchestrator".
"""

from __future__ import annotations

from pathlib import Path

from dpone_core import blockers
from dpone_core.backends.protocol import JobStateStore, LockManager
from dpone_core.blockers import detail
from dpone_core.errors import DponeUsageError
from dpone_core.evidence import check_output_dir
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.manifest import load_manifest
from dpone_core.orchestrator.admission import admit
from dpone_core.orchestrator.attempt import end_attempt, execute
from dpone_core.orchestrator.invocation import Invocation, default_output_dir
from dpone_core.orchestrator.request import OrchestratedRunRequest, RestartGuard, RunExecutor
from dpone_core.report import OrchestratedRunReport
from dpone_core.resume import ResumePolicyPlanner

__all__ = ["OrchestratedRunService"]


class OrchestratedRunService:
    def __init__(
        self,
        *,
        lock_manager: LockManager,
        handoff_builder: SchedulerHandoffBuilder,
        run_executor: RunExecutor,
        job_state_store: JobStateStore,
        planner: ResumePolicyPlanner | None = None,
        restart_guard: RestartGuard | None = None,
    ) -> None:
        self.lock_manager = lock_manager
        self.handoff_builder = handoff_builder
        self.run_executor = run_executor
        self.job_state_store = job_state_store
        self.planner = planner or ResumePolicyPlanner()
        self.restart_guard = restart_guard or _duplicate_risk

    def run(
        self, *, request: OrchestratedRunRequest, output_dir: str | Path | None = None
    ) -> OrchestratedRunReport:
        """Run one process under the lock, state and policy; always returns a report.

        Invalid manifests raise ``ManifestError`` before anything is locked or
        written. An interrupt (SIGTERM/SIGINT turned into an exception) ends the
        attempt as ``failed``, releases the key and raises
        :class:`~dpone_core.orchestrator.OrchestrationInterrupted` carrying the report.
        """
        inv = self._invocation(request, output_dir)
        acquisition = self.lock_manager.acquire(inv.lock_key, run_id=inv.run_id)
        inv.acquisition = acquisition
        if not acquisition.acquired or acquisition.lock is None:
            inv.decision_message = acquisition.message
            code = acquisition.blocker or blockers.LOCK_CONCURRENT_RUN
            refusal = [detail(code, acquisition.message)]
            return inv.finish("blocked", refusal, inv.peek_state(), None)
        with acquisition.lock as lock:
            admission = admit(inv, lock, self.lock_manager, self.planner, self.restart_guard)
            if admission.state is None:
                return inv.finish("blocked", admission.refusal, admission.previous, None)
            end = execute(inv, admission.state, lock, self.run_executor)
            return end_attempt(inv, admission.state, end)

    def _invocation(
        self, request: OrchestratedRunRequest, output_dir: str | Path | None
    ) -> Invocation:
        """Resolve the manifest, process, run id, lock key and output dir of one invocation."""
        loaded = load_manifest(request.manifest_path)
        process_name, process = loaded.select(request.selector)
        run_id = request.run_id or _default_run_id(process_name, loaded.path)
        lock_key = request.concurrency_key or process.concurrency_key or run_id
        out_dir = Path(output_dir) if output_dir is not None else Path(default_output_dir(run_id))
        unusable = check_output_dir(out_dir)
        if unusable is not None:
            expected = "expected a writable directory"
            raise DponeUsageError(f"output dir {out_dir}: {unusable}; {expected}")
        request = request.model_copy(update={"run_id": run_id, "selector": process_name})
        settings = self.lock_manager.handoff_settings().merged(
            self.job_state_store.handoff_settings()
        )
        handoff = Invocation.handoff_for(
            self.handoff_builder, request, lock_key=lock_key, output_dir=out_dir, settings=settings
        )
        return Invocation(
            request=request,
            run_id=run_id,
            process=process_name,
            lock_key=lock_key,
            output_dir=out_dir,
            store=self.job_state_store,
            handoff=handoff,
        )


def _default_run_id(selector: str, manifest_path: Path) -> str:
    from dpone_core.executor.service import default_run_id

    return default_run_id(selector, manifest_path)


def _duplicate_risk(
    manifest_path: str, selector: str | None, run_id: str, previous_generation: int
) -> str | None:
    from dpone_core.executor.restart_guard import duplicate_risk

    return duplicate_risk(manifest_path, selector, run_id, previous_generation)
