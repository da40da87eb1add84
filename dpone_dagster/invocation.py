"""One step's invocation: the selected processes of a dpone multi-asset, run in order.

Materializing a dpone asset goes through :class:`~dpone_core.run.OrchestratedRunService`
exactly like ``dpone orchestrate run``: the same lock, job state, resume policy,
retries and evidence. A :class:`DponeInvocation` adds the Dagster side, for one
step (made by :class:`~dpone_dagster.resource.DponeResource`, which holds the
configuration):

* **Retries inside a run family** (:mod:`dpone_dagster.run_family`): a process
  whose job state already committed in this Dagster run family is not executed
  again (its committed report is re-reported, ``dpone/reused``); one that failed
  in this family resumes from its checkpoint, whatever the policy.
* **Partial success**: each process is reported as it finishes; a process that
  did not commit ends the step with ``dagster.Failure`` only after every other
  selected process had its turn (:class:`~dpone_dagster.failures.StepFailures`);
  a process that reads a failed sibling's target is skipped instead.
* **Checks** run right after each process; checks selected without their asset
  verify the latest materialization (:mod:`dpone_dagster.checks`).
* **Live progress**: the engine's progress lines become Dagster log lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

import dagster as dg

from dpone_core import blockers
from dpone_core.blockers import leaves_data_as_it_was
from dpone_core.errors import DponeUsageError
from dpone_core.executor import RunManifestService
from dpone_core.executor.transfer import target_table
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.job_state import SchedulerIdentity
from dpone_core.lifecycle import JobStatus
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_core.resume import ResumePolicy
from dpone_core.run import (
    InvalidInputAfterAdmission,
    OrchestratedRunRequest,
    OrchestratedRunService,
    OrchestrationInterrupted,
)
from dpone_dagster.backend_cache import Backend
from dpone_dagster.checks import (
    CHECK_NAME,
    checks_without_assets,
    evaluate_check,
    latest_materialized_run_id,
    nothing_to_check,
)
from dpone_dagster.command_pipes import NO_COMMAND_REPORTS, CommandPipes, CommandReports
from dpone_dagster.failures import StepFailures
from dpone_dagster.metadata import RESUME_POLICY_TAG, report_metadata
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.process_ref import ProcessRef, selected_refs
from dpone_dagster.progress import LogStream
from dpone_dagster.registry_link import register_committed
from dpone_dagster.run_config import RUN_CONFIG_RESUME_POLICY
from dpone_dagster.run_family import (
    committed_report,
    output_dir_for,
    previous_in_family,
    root_run_id,
    run_id_for,
)

__all__ = [
    "DponeInvocation",
    "InvocationSettings",
    "ProcessOutcome",
    "StepResult",
    "resume_policy_of",
    "warn_changed_manifests",
]

#: What a step yields: one result per committed process, and check results.
StepResult = dg.MaterializeResult[Any] | dg.AssetCheckResult


@dataclass(frozen=True)
class InvocationSettings:
    """The resource's configuration as one invocation needs it."""

    output_root: str
    retry_attempts: int
    retry_backoff_seconds: float
    #: The policy when the run has no :data:`~dpone_dagster.metadata.RESUME_POLICY_TAG`.
    resume_policy: str
    #: Where committed runs are registered (docs/operations.md), or None.
    registry: str | None = None


@dataclass(frozen=True)
class ProcessOutcome:
    """One process's report, and how it came about."""

    report: OrchestratedRunReport
    #: Already committed in this run family: re-reported, not executed again.
    reused: bool
    #: The attempt failed on invalid input (found against the database): no retry helps.
    invalid_input: bool = False
    #: What the committed try's command reported over Dagster Pipes (command_pipes.py).
    command: CommandReports = NO_COMMAND_REPORTS


def resume_policy_of(context: dg.AssetExecutionContext, default: str) -> ResumePolicy:
    """The policy for this run: the op's run config, else the run tag, else ``default``.

    Run config is what the launchpad and ``dagster asset materialize --config-json``
    set for one run without touching the resource's configuration; the tag is what
    a backfill or a schedule can carry. An unknown value fails without retries.
    """
    text = _configured_policy(context) or context.run.tags.get(RESUME_POLICY_TAG) or default
    try:
        return ResumePolicy(text)
    except ValueError:
        raise dg.Failure(
            description=f"run tag {RESUME_POLICY_TAG}={text!r} is not a resume policy; "
            "expected one of 'fail', 'resume', 'restart'",
            allow_retries=False,
        ) from None


def _configured_policy(context: dg.AssetExecutionContext) -> str | None:
    config = context.op_execution_context.op_config
    if isinstance(config, Mapping):
        value = config.get(RUN_CONFIG_RESUME_POLICY)
        # Dagster hands an enum field over as the member's name (FAIL, RESUME, RESTART).
        return str(value).lower() if value else None
    return None


class DponeInvocation:
    """The selected processes of one step, and how to run them."""

    def __init__(
        self, context: dg.AssetExecutionContext, settings: InvocationSettings, backend: Backend
    ) -> None:
        self.context = context
        self.settings = settings
        self.backend = backend
        #: The selected processes, in run (topological) order.
        self.refs = selected_refs(context)
        # Dagster partitions per op: every process of a partitioned op runs the window.
        self._window = PartitionWindow.from_context(context)

    def window_of(self, ref: ProcessRef) -> PartitionWindow | None:
        del ref  # the op's partition is every selected process's
        return self._window

    def ref_for(self, asset_key: dg.AssetKey | None) -> ProcessRef:
        """The selected process behind ``asset_key`` (default: the only one)."""
        if asset_key is None:
            if len(self.refs) != 1:
                raise dg.DagsterInvariantViolationError(
                    "orchestrate() needs an asset_key when the step has "
                    f"{len(self.refs)} selected assets"
                )
            return self.refs[0]
        for ref in self.refs:
            if ref.asset_key == asset_key:
                return ref
        raise dg.DagsterInvariantViolationError(
            f"asset {asset_key.to_user_string()} is not selected in this step"
        )

    # -- one process -----------------------------------------------------------------------
    def orchestrate(self, ref: ProcessRef) -> ProcessOutcome:
        """Run ``ref``'s process (or re-report it when it committed in this run family)."""
        window = self.window_of(ref)
        root = root_run_id(self.context)
        run_id = run_id_for(ref.run_id_prefix, window, root)
        out_dir = output_dir_for(self.settings.output_root, run_id, window, root)
        policy = resume_policy_of(self.context, self.settings.resume_policy)
        store = self.backend.job_state_store
        previous = previous_in_family(store, run_id, out_dir)
        if previous is not None and previous.status is JobStatus.COMMITTED:
            self.context.log.info(
                f"dpone: {ref.label}: run id {run_id!r} already committed in this "
                "Dagster run; not executed again"
            )
            return ProcessOutcome(committed_report(previous, out_dir, store, policy), reused=True)
        if previous is not None:
            policy = ResumePolicy.RESUME  # a re-execution of the run that left this state
        self.context.log.info(
            f"dpone: {ref.label}: run id {run_id!r}, resume policy {policy.value}"
            + (f", window [{window.start}, {window.end})" if window else "")
        )
        request = self._request(ref, run_id, policy, window)
        try:
            with CommandPipes(self.context, ref) as pipes:  # Pipes + live output per try
                report = self._service().run(request=request, output_dir=out_dir)
        except InvalidInputAfterAdmission as exc:
            # Invalid input found only against the database (a missing table or column):
            # the engine recorded the attempt as failed; report it like any failure (an
            # invalid manifest file itself fails before anything is written and propagates).
            return ProcessOutcome(exc.report, reused=False, invalid_input=True)
        except OrchestrationInterrupted as exc:
            self.context.log.error(
                redact(
                    f"dpone: {ref.label}: interrupted; run id {run_id!r} recorded as failed "
                    f"(evidence: {exc.report.output_dir})"
                )
            )
            raise exc.cause from None
        return ProcessOutcome(report, reused=False, command=pipes.reports())

    def _request(
        self,
        ref: ProcessRef,
        run_id: str,
        policy: ResumePolicy,
        window: PartitionWindow | None,
    ) -> OrchestratedRunRequest:
        env = {"DAGSTER_RUN_ID": self.context.run.run_id}
        if window is not None:
            env["DPONE_PARTITION_KEY"] = window.key
        return OrchestratedRunRequest(
            manifest_path=ref.manifest_path,
            selector=ref.selector,
            run_id=run_id,
            concurrency_key=ref.lock_key,
            scheduler=SchedulerIdentity(
                kind="dagster", name=self.context.job_name, run_id=self.context.run.run_id
            ),
            retry_attempts=self.settings.retry_attempts,
            retry_backoff_seconds=self.settings.retry_backoff_seconds,
            resume_policy=policy,
            env=env,
            window_start=window.start if window else None,
            window_end=window.end if window else None,
        )

    def _service(self) -> OrchestratedRunService:
        # LogStream is a text stream; RunManifestService only writes lines to it.
        progress = cast(TextIO, LogStream(self.context.log))
        return OrchestratedRunService(
            lock_manager=self.backend.lock_manager,
            handoff_builder=SchedulerHandoffBuilder(),
            run_executor=RunManifestService(progress=progress).execute,
            job_state_store=self.backend.job_state_store,
        )

    # -- the whole step --------------------------------------------------------------------
    def results(self) -> Iterator[StepResult]:
        """Run every selected process in order; yield results as each finishes.

        Committed processes yield a ``MaterializeResult`` (and their check result)
        even when a sibling fails; the step then ends with ``dagster.Failure``.
        """
        warn_changed_manifests(self.context.log, self.refs)
        failures = StepFailures()
        for ref in self.refs:
            yield from self._step_one(ref, failures)
        store = self.backend.job_state_store
        materialized = {ref.asset_key for ref in self.refs}
        partition = self._window.key if self._window is not None else None
        yield from checks_without_assets(self.context, store, materialized, partition)
        if failures:
            raise failures.failure(len(self.refs))

    def _step_one(self, ref: ProcessRef, failures: StepFailures) -> Iterator[StepResult]:
        upstream = failures.failed_upstream(ref.sibling_deps)
        if upstream:
            failures.skipped(ref.asset_key, ref.label, upstream)
            return
        try:
            outcome = self.orchestrate(ref)
        except DponeUsageError as exc:
            failures.invalid(ref.asset_key, ref.label, exc)
            return
        report = outcome.report
        window = self.window_of(ref)
        fresh = report.passed and not outcome.reused
        table = target_table(ref.manifest_path, ref.selector) if fresh and ref.is_transfer else None
        metadata = report_metadata(report, window=window, reused=outcome.reused, table=table)
        if fresh:
            metadata.update(register_committed(report, self.settings.registry, self.context.log))
        self.context.log.info(redact(_summary(ref, outcome)))
        if fresh:
            yield from outcome.command.results(self.context, ref.asset_key, metadata)
        elif report.passed or leaves_data_as_it_was(report.blocker_details):
            # Nothing happened to the data (reused in a re-execution, already committed,
            # held by another live run): not a new materialization and not a failure. The
            # output is skipped and the asset keeps its status; the refusal is observed.
            self._observe(ref, window, metadata)
        else:
            self._observe(ref, window, metadata)  # the failure, on the asset's own page
            failures.did_not_commit(
                ref.asset_key, ref.label, report, metadata, invalid_input=outcome.invalid_input
            )
        if dg.AssetCheckKey(ref.asset_key, CHECK_NAME) in self.context.selected_asset_check_keys:
            run_id = self._checked_run_id(ref, report)
            if run_id is None:
                yield nothing_to_check(ref, window.key if window is not None else None)
            else:
                yield evaluate_check(self.backend.job_state_store, ref, run_id)

    def _observe(
        self, ref: ProcessRef, window: PartitionWindow | None, metadata: Mapping[str, Any]
    ) -> None:
        self.context.log_event(
            dg.AssetObservation(
                asset_key=ref.asset_key,
                partition=window.key if window is not None else None,
                metadata=dict(metadata),
            )
        )

    def _checked_run_id(self, ref: ProcessRef, report: OrchestratedRunReport) -> str | None:
        """The run id whose durable evidence the check verifies.

        The run's own when it committed now or before; after any other refusal (another
        live run holds the key) the asset's latest materialization in the targeted
        partition, so a healthy asset is not failed for a run that never started (None:
        the asset has no materialization to check yet).
        """
        if report.passed or blockers.JOB_ALREADY_COMMITTED in report.blockers:
            return report.run_id
        window = self.window_of(ref)
        latest = latest_materialized_run_id(
            self.context.instance, ref.asset_key, window.key if window is not None else None
        )
        return latest


def warn_changed_manifests(log: dg.DagsterLogManager, refs: list[ProcessRef]) -> None:
    """Warn once per manifest whose file changed since the code location loaded it."""
    seen: dict[str, str | None] = {}
    for ref in refs:
        if ref.manifest_sha256 is None or ref.manifest_path in seen:
            continue
        seen[ref.manifest_path] = current = _sha256(Path(ref.manifest_path))
        if current != ref.manifest_sha256:
            log.warning(
                f"dpone: {ref.manifest_path} changed since the code location loaded it; "
                "the run uses the file as it is now. Reload the code location to update "
                "the asset definitions."
            )


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _summary(ref: ProcessRef, outcome: ProcessOutcome) -> str:
    report = outcome.report
    rr: Mapping[str, Any] = (report.run_result or {}).get("result") or {}
    rows = (
        f"extracted {rr.get('extracted_rows', 0)}, inserted {rr.get('inserted_rows', 0)}, "
        f"updated {rr.get('updated_rows', 0)}, final {rr.get('final_rows')}"
    )
    details = "; ".join(f"{d.code}: {d.message}" for d in report.blocker_details)
    blockers = f"; blockers: {details}" if details else ""
    again = " (already committed in this Dagster run)" if outcome.reused else ""
    return (
        f"dpone: {ref.label}: {report.status}{again}, run id {report.run_id!r}, {rows}, "
        f"{report.duration_seconds:.2f} s{blockers}"
    )
