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

from dpone_core import blockers, defaults
from dpone_core.backends.protocol import JobStateStore, LockManager
from dpone_core.blockers import detail
from dpone_core.clock import utc_now
from dpone_core.errors import DponeUsageError
from dpone_core.evidence import check_output_dir
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.logical_run import LogicalDate, logical_run_id, parse_execution_date
from dpone_core.orchestrator.admission import admit
from dpone_core.orchestrator.attempt import end_attempt, execute
from dpone_core.orchestrator.handoff_inputs import handoff_inputs
from dpone_core.orchestrator.invocation import Invocation, default_output_dir
from dpone_core.orchestrator.request import OrchestratedRunRequest, RestartGuard, RunExecutor
from dpone_core.orchestrator.target import resolve_target
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
        require_manifest: bool | None = None,
    ) -> None:
        self.lock_manager = lock_manager
        self.handoff_builder = handoff_builder
        self.run_executor = run_executor
        self.job_state_store = job_state_store
        self.planner = planner or ResumePolicyPlanner()
        self.restart_guard = restart_guard or _duplicate_risk
        #: None: required exactly when ``run_executor`` is ``RunManifestService().execute``
        #: (a custom executor may run without a manifest file, as the seed's example does).
        self.require_manifest = require_manifest

    def run(
        self,
        *,
        request: OrchestratedRunRequest,
        output_dir: str | Path | None = None,
        output_root: str | Path | None = None,
    ) -> OrchestratedRunReport:
        """Run one process under the lock, state and policy; always returns a report.

        Evidence goes to ``output_dir``, else ``<output_root>/<run id>`` (default root
        ``.dpone/orchestration``). Invalid manifests raise ``ManifestError`` before
        anything is locked or written. An interrupt (SIGTERM/SIGINT turned into an
        exception) ends the attempt as ``failed``, releases the key and raises
        :class:`~dpone_core.orchestrator.OrchestrationInterrupted` carrying the report.
        """
        inv = self._invocation(request, output_dir, output_root)
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
        self,
        request: OrchestratedRunRequest,
        output_dir: str | Path | None,
        output_root: str | Path | None,
    ) -> Invocation:
        """Resolve the process, run id, lock key, output dir and handoff of one invocation."""
        target = resolve_target(
            request.manifest_path, request.selector, required=self._manifest_required()
        )
        logical = _logical_date(request.execution_date)
        run_id = request.run_id or logical_run_id(target.process, logical, target.manifest_path)
        lock_key = request.concurrency_key or target.concurrency_key or run_id
        root = output_root if output_root is not None else defaults.OUTPUT_ROOT
        out_dir = Path(output_dir or default_output_dir(run_id, root))
        unusable = check_output_dir(out_dir)
        if unusable is not None:
            expected = "expected a writable directory"
            raise DponeUsageError(f"output dir {out_dir}: {unusable}; {expected}")
        selector = target.process if target.from_manifest else request.selector
        request = request.model_copy(
            update={"run_id": run_id, "selector": selector, "execution_date": None}
        )
        settings = self.lock_manager.handoff_settings().merged(
            self.job_state_store.handoff_settings()
        )
        inputs = handoff_inputs(
            request,
            target,
            output_dir=out_dir,
            run_id=run_id,
            first_date=logical.day,
            settings=settings,
        )
        return Invocation(
            request=request,
            run_id=run_id,
            process=target.process,
            lock_key=lock_key,
            output_dir=out_dir,
            store=self.job_state_store,
            handoff=self.handoff_builder.build(inputs).to_dict(),
        )

    def _manifest_required(self) -> bool:
        """Whether the executor reads the manifest (the default one does)."""
        if self.require_manifest is not None:
            return self.require_manifest
        from dpone_core.executor.service import RunManifestService

        owner = getattr(self.run_executor, "__self__", None)
        return isinstance(owner, RunManifestService)


def _logical_date(execution_date: str | None) -> LogicalDate:
    if execution_date is None:
        return LogicalDate.of(utc_now())
    return parse_execution_date(execution_date)


def _duplicate_risk(
    manifest_path: str, selector: str | None, run_id: str, previous_generation: int
) -> str | None:
    from dpone_core.executor.restart_guard import duplicate_risk

    return duplicate_risk(manifest_path, selector, run_id, previous_generation)
