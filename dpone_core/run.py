"""OrchestratedRunService: lock -> state -> run -> evidence.

Admission is decided under the lock: acquire the key, re-read the job state,
plan by the resume policy, and only then transition. A contender that looked
at the state before a holder committed can therefore never execute after it.
Only the lock holder writes a run's state; refused attempts write evidence of
their own but never touch the state they were refused for.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import Field

from dpone_core import blockers
from dpone_core.blockers import BlockerDetail, detail
from dpone_core.clock import utc_now_iso
from dpone_core.errors import DponeUsageError
from dpone_core.evidence import plan_evidence, write_evidence
from dpone_core.executor.request import RunRequest
from dpone_core.handoff import HandoffInputs, SchedulerHandoffBuilder
from dpone_core.lifecycle import JobStatus
from dpone_core.locks import LockAcquisition, LockManager, RunLock
from dpone_core.manifest import load_manifest
from dpone_core.naming import file_safe_name
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_core.resume import PreviousState, ResumePolicy, ResumePolicyPlanner
from dpone_core.state import (
    AttemptHolder,
    CorruptJobState,
    JobState,
    JobStateStore,
    admit_attempt,
    advance,
)

DEFAULT_OUTPUT_ROOT = ".dpone/orchestration"


class OrchestratedRunRequest(RunRequest):
    """A :class:`RunRequest` plus the controls the orchestrator adds around it."""

    concurrency_key: str | None = Field(default=None, min_length=1)
    resume_policy: ResumePolicy = ResumePolicy.FAIL


class RunOutcome(Protocol):
    """What a run executor returns (``RunResult`` or anything shaped like it)."""

    @property
    def passed(self) -> bool: ...

    def to_dict(self) -> dict[str, Any]: ...


RunExecutor = Callable[[RunRequest], RunOutcome]


class OrchestrationInterrupted(BaseException):
    """A signal or interrupt ended the attempt; the state and evidence are already written."""

    def __init__(self, report: OrchestratedRunReport, cause: BaseException) -> None:
        super().__init__(f"orchestrated run {report.run_id} interrupted: {cause!r}")
        self.report = report
        self.cause = cause


class InvalidInputAfterAdmission(DponeUsageError):
    """Invalid input found only once the attempt ran (a column the source lacks).

    Still a usage error (exit 2), but the attempt was admitted, so it carries
    the report of the ``failed`` attempt the engine recorded and wrote.
    """

    def __init__(self, cause: DponeUsageError, report: OrchestratedRunReport) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.report = report


def default_output_dir(run_id: str) -> str:
    return f"{DEFAULT_OUTPUT_ROOT}/{file_safe_name(run_id)}"


def _default_run_id(selector: str) -> str:
    from dpone_core.executor.service import default_run_id

    return default_run_id(selector)


class OrchestratedRunService:
    def __init__(
        self,
        *,
        lock_manager: LockManager,
        handoff_builder: SchedulerHandoffBuilder,
        run_executor: RunExecutor,
        job_state_store: JobStateStore,
        planner: ResumePolicyPlanner | None = None,
    ) -> None:
        self.lock_manager = lock_manager
        self.handoff_builder = handoff_builder
        self.run_executor = run_executor
        self.job_state_store = job_state_store
        self.planner = planner or ResumePolicyPlanner()

    # -- the one public operation -------------------------------------------------
    def run(
        self, *, request: OrchestratedRunRequest, output_dir: str | Path | None = None
    ) -> OrchestratedRunReport:
        """Run one process under the lock, state and policy; always returns a report.

        Invalid manifests raise ``ManifestError`` before anything is locked or
        written. An interrupt (SIGTERM/SIGINT turned into an exception) ends the
        attempt as ``failed``, releases the key and raises
        :class:`OrchestrationInterrupted` carrying the report.
        """
        started = time.monotonic()
        started_at = utc_now_iso()
        loaded = load_manifest(request.manifest_path)
        process_name, process = loaded.select(request.selector)
        run_id = request.run_id or _default_run_id(process_name)
        lock_key = request.concurrency_key or process.concurrency_key or run_id
        out_dir = Path(output_dir) if output_dir is not None else Path(default_output_dir(run_id))
        request = request.model_copy(update={"run_id": run_id, "selector": process_name})
        ctx = _Attempt(
            service=self,
            request=request,
            process=process_name,
            run_id=run_id,
            lock_key=lock_key,
            output_dir=out_dir,
            started=started,
            started_at=started_at,
        )
        return ctx.execute()

    def handoff_argv(
        self, request: OrchestratedRunRequest, lock_key: str, out_dir: Path
    ) -> list[str]:
        """The ``dpone`` arguments that reproduce this run under any scheduler."""
        argv = ["orchestrate", "run", "--manifest", request.manifest_path]
        if request.selector:
            argv += ["--selector", request.selector]
        argv += ["--run-id", str(request.run_id)]
        argv += ["--retry-attempts", str(request.retry_attempts)]
        argv += ["--retry-backoff-seconds", f"{request.retry_backoff_seconds:g}"]
        argv += ["--concurrency-key", lock_key]
        lock_dir = getattr(self.lock_manager, "lock_dir", None)
        if lock_dir is not None:
            argv += ["--lock-dir", str(lock_dir)]
        ttl = getattr(self.lock_manager, "ttl_seconds", None)
        if ttl is not None:
            argv += ["--lock-ttl-seconds", f"{ttl:g}"]
        state_dir = getattr(self.job_state_store, "state_dir", None)
        if state_dir is not None:
            argv += ["--state-dir", str(state_dir)]
        # A backend that is not the default (e.g. PostgreSQL) names itself; never by secret value.
        argv += [str(arg) for arg in getattr(self.lock_manager, "handoff_args", ())]
        argv += ["--resume-policy", request.resume_policy.value]
        argv += ["--output-dir", str(out_dir)]
        return argv


class _Attempt:
    """One invocation of :meth:`OrchestratedRunService.run`; holds its working values."""

    def __init__(
        self,
        *,
        service: OrchestratedRunService,
        request: OrchestratedRunRequest,
        process: str,
        run_id: str,
        lock_key: str,
        output_dir: Path,
        started: float,
        started_at: str,
    ) -> None:
        self.service = service
        self.request = request
        self.process = process
        self.run_id = run_id
        self.lock_key = lock_key
        self.output_dir = output_dir
        self.started = started
        self.started_at = started_at
        self.store = service.job_state_store
        self.acquisition: LockAcquisition | None = None
        self.decision_message = ""
        self.handoff = service.handoff_builder.build(
            HandoffInputs(
                argv=service.handoff_argv(request, lock_key, output_dir),
                name=run_id,
                env_refs=dict(getattr(service.lock_manager, "handoff_env_refs", None) or {}),
            )
        ).to_dict()

    def execute(self) -> OrchestratedRunReport:
        acquisition = self.service.lock_manager.acquire(self.lock_key, run_id=self.run_id)
        self.acquisition = acquisition
        if not acquisition.acquired or acquisition.lock is None:
            code = acquisition.blocker or blockers.LOCK_CONCURRENT_RUN
            self.decision_message = acquisition.message
            return self._finish(
                "blocked", [detail(code, acquisition.message)], self._peek_state(), None
            )
        lock = acquisition.lock
        try:
            return self._admit_and_run(lock)
        finally:
            lock.release()

    # -- under the lock ---------------------------------------------------------------
    def _admit_and_run(self, lock: RunLock) -> OrchestratedRunReport:
        try:
            previous = self.store.load(self.run_id)
        except CorruptJobState as exc:
            decision = self.service.planner.plan(
                PreviousState(status=None, corrupt=True), self.request.resume_policy
            )
            self.decision_message = decision.message
            return self._finish("blocked", [detail(blockers.JOB_CORRUPT, str(exc))], None, None)
        holder_alive = self._holder_alive(previous) if previous else None
        decision = self.service.planner.plan(
            PreviousState(
                status=previous.status if previous else None,
                holder_alive=holder_alive,
                other_process=(
                    previous.process
                    if previous is not None and previous.process != self.process
                    else None
                ),
            ),
            self.request.resume_policy,
        )
        self.decision_message = decision.message
        if not decision.admit:
            assert decision.blocker is not None
            message = decision.message
            if previous is not None:
                location = self.store.location(self.run_id)
                message = f"{message} (run id {self.run_id!r}, state file {location})"
            return self._finish("blocked", [detail(decision.blocker, message)], previous, None)

        holder = lock.holder
        state = admit_attempt(
            previous,
            run_id=self.run_id,
            process=self.process,
            manifest_path=self.request.manifest_path,
            selector=self.request.selector,
            lock_key=self.lock_key,
            output_dir=str(self.output_dir),
            holder=AttemptHolder(
                pid=os.getpid(),
                host=socket.gethostname(),
                pid_start_time=getattr(holder, "pid_start_time", None),
                lock_token=getattr(holder, "token", None),
            ),
            from_scratch=decision.from_scratch,
        )
        if decision.takeover:
            state = state.model_copy(
                update={
                    "transitions": [
                        *state.transitions[:-1],
                        state.transitions[-1].model_copy(
                            update={"reason": f"takeover: {decision.message}"}
                        ),
                    ]
                }
            )
        state = advance(state, JobStatus.RUNNING)
        self.store.save(state)
        run_request = RunRequest.model_validate(
            {
                **self.request.model_dump(
                    include=set(RunRequest.model_fields),
                    exclude={"job_attempt", "generation", "checkpoint"},
                ),
                "job_attempt": state.attempt,
                "generation": state.generation,
                "checkpoint": state.checkpoint,
            }
        )
        try:
            outcome = self.service.run_executor(run_request)
        except DponeUsageError as exc:
            # Found only against the database (a key or cursor column that does not
            # exist): record the attempt as failed, then surface it as invalid input.
            reason = redact(f"invalid manifest: {exc}")
            details = [detail(blockers.RUN_NOT_PASSED, reason)]
            state = advance(state, JobStatus.FAILED, reason=reason, blocker_details=details)
            self.store.save(state)
            report = self._finish("failed", details, state, None)
            raise InvalidInputAfterAdmission(exc, report) from exc
        except Exception as exc:  # the executor crashed: a failed attempt, not a crash of ours
            reason = redact(f"{type(exc).__name__}: {exc}")
            details = [detail(blockers.RUN_NOT_PASSED, f"the run raised {reason}")]
            state = advance(state, JobStatus.FAILED, reason=reason, blocker_details=details)
            self.store.save(state)
            return self._finish("failed", details, state, None)
        except BaseException as exc:
            # A lock backend that interrupted the run because it lost the lock says why.
            lost = getattr(lock, "lost_reason", None)
            reason = redact(lost or _describe_interrupt(exc))
            details = [detail(blockers.RUN_INTERRUPTED, f"the run was interrupted: {reason}")]
            state = advance(state, JobStatus.FAILED, reason=reason, blocker_details=details)
            self.store.save(state)
            report = self._finish("failed", details, state, None)
            raise OrchestrationInterrupted(report, exc) from exc

        result_dict = outcome.to_dict()
        checkpoint = (result_dict.get("result") or {}).get("checkpoint")
        if outcome.passed:
            state = advance(
                state,
                JobStatus.COMMITTED,
                run_result=result_dict,
                checkpoint=checkpoint,
                blocker_details=[],
            )
            self.store.save(state)
            return self._finish("committed", [], state, result_dict)
        errors = (result_dict.get("result") or {}).get("errors") or []
        reason = redact("; ".join(str(e) for e in errors) or "the run did not pass")
        details = [detail(blockers.RUN_NOT_PASSED, reason)]
        state = advance(
            state,
            JobStatus.FAILED,
            reason=reason,
            run_result=result_dict,
            checkpoint=checkpoint,
            blocker_details=details,
        )
        self.store.save(state)
        return self._finish("failed", details, state, result_dict)

    def _holder_alive(self, previous: JobState) -> bool | None:
        """Is the process that left ``previous`` in ``running`` still alive?

        If its lock key is ours, we hold that key now, and a holder never lets
        go of its key while running: it is gone. Otherwise ask the lock
        manager whether the key it held is still held by the same token.
        """
        if previous.status not in (JobStatus.RUNNING, JobStatus.STARTED):
            return None
        if previous.lock_key == self.lock_key:
            return False
        token = previous.holder.lock_token if previous.holder else None
        for status in self.service.lock_manager.inspect():
            if status.key == previous.lock_key and status.holder is not None:
                if token is not None and status.holder.token != token:
                    return False
                return status.state == "held"
        return False

    def _peek_state(self) -> JobState | None:
        try:
            return self.store.load(self.run_id)
        except CorruptJobState:
            return None

    def _finish(
        self,
        status: str,
        details: list[BlockerDetail],
        state: JobState | None,
        run_result: dict[str, Any] | None,
    ) -> OrchestratedRunReport:
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
        write_evidence(paths, report)
        return report


def _describe_interrupt(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
