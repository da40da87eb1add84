"""DponeResource: runs the selected processes of a dpone multi-asset through the engine.

Materializing a dpone asset goes through :class:`~dpone_core.run.OrchestratedRunService`
exactly like ``dpone orchestrate run``: the same lock, job state, resume policy,
retries and evidence. What the resource adds is the Dagster side:

* **Run ids** are deterministic: ``<selector>_<partition key>`` for a partition,
  ``<selector>_<root run id>`` otherwise (see :mod:`dpone_dagster.partitions`).
* **Dagster retries** (step retries, re-execution from failure, run retries) share
  the root run id and so the run id. A process whose job state already committed
  *in this Dagster run family* is not executed again: its committed report is
  re-reported (``dpone/reused``). A process that failed in this family resumes
  from its checkpoint. The family is recognised by the evidence directory the
  job state records, which is per root run id.
* **Partial success**: each process is reported as it finishes; a process that did
  not commit ends the step with ``dagster.Failure`` only after every other
  selected process had its turn (a process that reads a failed sibling's target is
  skipped instead).
* **Live progress**: the engine's progress lines become Dagster log lines.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO, cast

import dagster as dg
from pydantic import Field

from dpone_core.backends.errors import BackendConfigError
from dpone_core.backends.selection import OrchestrationBackend, select_backend
from dpone_core.errors import DponeUsageError
from dpone_core.evidence import read_latest_report
from dpone_core.executor import RunManifestService
from dpone_core.handoff import SchedulerHandoffBuilder
from dpone_core.lifecycle import JobStatus
from dpone_core.naming import file_safe_name
from dpone_core.redact import redact
from dpone_core.report import OrchestratedRunReport
from dpone_core.resume import ResumePolicy
from dpone_core.run import (
    InvalidInputAfterAdmission,
    OrchestratedRunRequest,
    OrchestratedRunService,
    OrchestrationInterrupted,
)
from dpone_core.state import CorruptJobState, JobState, JobStateStore
from dpone_dagster.checks import CHECK_NAME, evaluate_check
from dpone_dagster.metadata import (
    NON_RETRYABLE_BLOCKERS,
    describe_failure,
    failure_description,
    redact_tree,
    report_metadata,
)
from dpone_dagster.partitions import PartitionWindow, partitioned_run_id, unpartitioned_run_id
from dpone_dagster.progress import LogStream

__all__ = ["RESUME_POLICY_TAG", "DponeResource", "ProcessRef"]

#: Run tag that overrides the resource's resume policy for one run (or backfill).
RESUME_POLICY_TAG = "dpone/resume_policy"

#: Spec metadata keys the resource reads at run time (set by the decorator).
META_MANIFEST = "dpone/manifest"
META_MANIFEST_SHA = "dpone/manifest_sha256"
META_SELECTOR = "dpone/selector"
META_KIND = "dpone/kind"
META_RUN_ID_PREFIX = "dpone/run_id_prefix"
META_PARTITIONED = "dpone/partitions"


def _raw(value: Any) -> Any:
    """A metadata entry's plain value (specs may hold raw values or ``MetadataValue``s)."""
    if isinstance(value, dg.MetadataValue):
        return value.value
    return value


@dataclass(frozen=True)
class ProcessRef:
    """What the resource needs to run one asset's process, read from its spec metadata."""

    asset_key: dg.AssetKey
    manifest_path: str
    manifest_sha256: str | None
    selector: str
    kind: str
    run_id_prefix: str
    partitioned: bool
    #: Keys of assets in the same multi-asset that this one depends on.
    sibling_deps: tuple[dg.AssetKey, ...]

    @property
    def label(self) -> str:
        return f"{self.asset_key.to_user_string()} (process {self.selector!r})"

    @classmethod
    def from_spec(cls, spec: dg.AssetSpec, siblings: frozenset[dg.AssetKey]) -> ProcessRef:
        metadata = spec.metadata
        try:
            manifest = str(_raw(metadata[META_MANIFEST]))
            selector = str(_raw(metadata[META_SELECTOR]))
        except KeyError as exc:
            raise dg.DagsterInvariantViolationError(
                f"asset {spec.key.to_user_string()} has no {exc.args[0]!r} metadata; "
                "it was not built by @dpone_assets / build_dpone_assets"
            ) from None
        sha = metadata.get(META_MANIFEST_SHA)
        prefix = metadata.get(META_RUN_ID_PREFIX)
        return cls(
            asset_key=spec.key,
            manifest_path=manifest,
            manifest_sha256=str(_raw(sha)) if sha is not None else None,
            selector=selector,
            kind=str(_raw(metadata.get(META_KIND, "transfer"))),
            run_id_prefix=str(_raw(prefix)) if prefix is not None else selector,
            partitioned=META_PARTITIONED in metadata,
            sibling_deps=tuple(dep.asset_key for dep in spec.deps if dep.asset_key in siblings),
        )


@dataclass(frozen=True)
class _Outcome:
    report: OrchestratedRunReport
    reused: bool
    #: The attempt failed on invalid input (found against the database): no retry helps.
    invalid: bool = False


def _selected_refs(context: dg.AssetExecutionContext) -> list[ProcessRef]:
    """The selected processes of this step, in the multi-asset's (topological) order."""
    assets_def = context.assets_def
    siblings = frozenset(assets_def.keys)
    selected = context.selected_asset_keys
    return [
        ProcessRef.from_spec(spec, siblings) for spec in assets_def.specs if spec.key in selected
    ]


def _absolute(directory: str) -> Path:
    """Resolved once per use against the current directory, so evidence paths in metadata
    are absolute and a state's recorded ``output_dir`` compares equal across retries."""
    return Path(directory).expanduser().absolute()


def _sha256(path: str) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None


def _report_from_state(
    state: JobState, store: JobStateStore, policy: ResumePolicy
) -> OrchestratedRunReport:
    """A report of a committed state whose evidence files are gone (moved by an operator)."""
    return OrchestratedRunReport(
        passed=True,
        status="committed",
        run_id=state.run_id,
        process=state.process,
        selector=state.selector,
        manifest_path=state.manifest_path,
        lock_key=state.lock_key,
        lock_acquired=False,
        stale_lock_replaced=False,
        resume_policy=policy.value,
        decision="already committed in this Dagster run; rebuilt from the job state "
        "(the evidence reports were not found)",
        run_result=state.run_result,
        scheduler_handoff={},
        job_state=state.to_dict(),
        job_state_path=store.location(state.run_id),
        output_dir=state.output_dir,
        started_at=state.started_at,
        finished_at=state.updated_at,
        duration_seconds=0.0,
    )


_BACKENDS: dict[tuple[str | None, str, str, float], OrchestrationBackend] = {}
_BACKENDS_LOCK = threading.Lock()


def _shared_backend(
    backend: str | None, lock_dir: str, state_dir: str, ttl: float
) -> OrchestrationBackend:
    key = (backend, lock_dir, state_dir, ttl)
    with _BACKENDS_LOCK:
        found = _BACKENDS.get(key)
        if found is None:
            try:
                found = select_backend(
                    backend, lock_dir=lock_dir, state_dir=state_dir, lock_ttl_seconds=ttl
                )
            except BackendConfigError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
            if not _BACKENDS:
                atexit.register(_close_backends)
            _BACKENDS[key] = found
        return found


def _close_backends() -> None:
    with _BACKENDS_LOCK:
        for backend in _BACKENDS.values():
            backend.close()
        _BACKENDS.clear()


class DponeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where dpone keeps locks, job states and evidence, and how it retries.

    Relative directories resolve against the run worker's working directory; give
    absolute paths (as ``definitions.py`` does) when the webserver, daemon and run
    workers start in different directories. Every scheduler that runs the same
    manifests (cron, Airflow, the CLI) must use the same ``lock_dir`` and
    ``state_dir`` for locks and job states to protect them from each other.
    """

    lock_dir: str = Field(default=".dpone/locks", description="Directory of the lock files.")
    state_dir: str = Field(
        default=".dpone/orchestration-state",
        description="Directory of the <run id>.job_state.json files.",
    )
    output_root: str = Field(
        default=".dpone/orchestration",
        description="Evidence goes to <output_root>/<run id>[/dagster-<root run id>].",
    )
    lock_ttl_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="Age after which a lock record of an uncheckable holder (another host) "
        "is retired.",
    )
    retry_attempts: int = Field(
        default=0, ge=0, description="Extra tries of the underlying run after a failed one."
    )
    retry_backoff_seconds: float = Field(default=0.0, ge=0, description="Pause between tries.")
    backend: str | None = Field(
        default=None,
        description="Where locks and job states live: 'files', 'postgresql' (DSN from "
        "DPONE_ORCHESTRATION_DSN) or a postgresql:// URL (prefer the variable: resource config "
        "is shown in the UI). Default: PostgreSQL when DPONE_ORCHESTRATION_DSN is set, else files.",
    )
    resume_policy: Literal["fail", "resume", "restart"] = Field(
        default="fail",
        description="What to do when a run id already has a state from another Dagster run "
        "(re-executions of the same run always resume). Override per run with the run tag "
        f"{RESUME_POLICY_TAG}.",
    )

    # -- building blocks --------------------------------------------------------------
    def orchestration_backend(self) -> OrchestrationBackend:
        """The lock manager and job-state store, shared by every step in this process.

        A PostgreSQL backend holds connections, so one per configuration and
        process is kept (and closed at exit) instead of one per call.
        """
        return _shared_backend(
            self.backend,
            str(_absolute(self.lock_dir)),
            str(_absolute(self.state_dir)),
            self.lock_ttl_seconds,
        )

    def job_state_store(self) -> JobStateStore:
        return self.orchestration_backend().job_state_store

    def _service(self, context: dg.AssetExecutionContext) -> OrchestratedRunService:
        progress = LogStream(context.log)
        backend = self.orchestration_backend()
        return OrchestratedRunService(
            lock_manager=backend.lock_manager,
            handoff_builder=SchedulerHandoffBuilder(),
            run_executor=RunManifestService(progress=cast(TextIO, progress)).execute,
            job_state_store=backend.job_state_store,
        )

    def _policy(self, context: dg.AssetExecutionContext) -> ResumePolicy:
        text = context.run.tags.get(RESUME_POLICY_TAG) or self.resume_policy
        try:
            return ResumePolicy(text)
        except ValueError:
            raise dg.Failure(
                description=f"run tag {RESUME_POLICY_TAG}={text!r} is not a resume policy; "
                "expected one of 'fail', 'resume', 'restart'",
                allow_retries=False,
            ) from None

    @staticmethod
    def _root_run_id(context: dg.AssetExecutionContext) -> str:
        return context.run.root_run_id or context.run.run_id

    def run_id_for(
        self, context: dg.AssetExecutionContext, ref: ProcessRef, window: PartitionWindow | None
    ) -> str:
        if window is not None:
            return partitioned_run_id(ref.run_id_prefix, window.key)
        return unpartitioned_run_id(ref.run_id_prefix, self._root_run_id(context))

    def output_dir_for(
        self, context: dg.AssetExecutionContext, run_id: str, window: PartitionWindow | None
    ) -> Path:
        """The evidence directory; it also tells which Dagster run family admitted a state.

        A partition's run id outlives Dagster runs, so its evidence goes one level
        deeper, per root run id; an unpartitioned run id already names its family.
        """
        base = _absolute(self.output_root) / file_safe_name(run_id)
        if window is None:
            return base
        return base / f"dagster-{file_safe_name(self._root_run_id(context))}"

    # -- one process -------------------------------------------------------------------
    def orchestrate(
        self,
        context: dg.AssetExecutionContext,
        asset_key: dg.AssetKey | None = None,
    ) -> OrchestratedRunReport:
        """Orchestrate the process behind ``asset_key`` (default: the only selected asset).

        Returns the report (for a process already committed in this Dagster run
        family: its committed report, without running it again). Raises
        ``ManifestError`` for an invalid manifest.
        """
        refs = _selected_refs(context)
        if asset_key is None:
            if len(refs) != 1:
                raise dg.DagsterInvariantViolationError(
                    "orchestrate() needs an asset_key when the step has "
                    f"{len(refs)} selected assets"
                )
            ref = refs[0]
        else:
            matches = [r for r in refs if r.asset_key == asset_key]
            if not matches:
                raise dg.DagsterInvariantViolationError(
                    f"asset {asset_key.to_user_string()} is not selected in this step"
                )
            ref = matches[0]
        window = PartitionWindow.from_context(context) if ref.partitioned else None
        return self._orchestrate(context, ref, window).report

    def _previous(self, run_id: str) -> JobState | None:
        try:
            return self.job_state_store().load(run_id)
        except CorruptJobState:
            return None  # the service reports it (blocked job_state.corrupt) under the lock

    def _orchestrate(
        self, context: dg.AssetExecutionContext, ref: ProcessRef, window: PartitionWindow | None
    ) -> _Outcome:
        run_id = self.run_id_for(context, ref, window)
        out_dir = self.output_dir_for(context, run_id, window)
        policy = self._policy(context)
        previous = self._previous(run_id)
        same_family = previous is not None and previous.output_dir == str(out_dir)
        if same_family and previous is not None:
            if previous.status is JobStatus.COMMITTED:
                stored = read_latest_report(out_dir, "committed") or _report_from_state(
                    previous, self.job_state_store(), policy
                )
                context.log.info(
                    f"dpone: {ref.label}: run id {run_id!r} already committed in this "
                    "Dagster run; not executed again"
                )
                return _Outcome(stored, reused=True)
            else:
                # A re-execution of the run that left this state: continue it.
                policy = ResumePolicy.RESUME
        env = {"DAGSTER_RUN_ID": context.run.run_id}
        if window is not None:
            env["DPONE_PARTITION_KEY"] = window.key
        request = OrchestratedRunRequest(
            manifest_path=ref.manifest_path,
            selector=ref.selector,
            run_id=run_id,
            retry_attempts=self.retry_attempts,
            retry_backoff_seconds=self.retry_backoff_seconds,
            resume_policy=policy,
            env=env,
            window_start=window.start if window else None,
            window_end=window.end if window else None,
        )
        context.log.info(
            f"dpone: {ref.label}: run id {run_id!r}, resume policy {policy.value}"
            + (f", window [{window.start}, {window.end})" if window else "")
        )
        try:
            report = self._service(context).run(request=request, output_dir=out_dir)
        except InvalidInputAfterAdmission as exc:
            # Invalid input found only against the database (a missing table or column):
            # the engine recorded the attempt as failed; report it like any failure (an
            # invalid manifest file itself fails before anything is written and propagates).
            return _Outcome(exc.report, reused=False, invalid=True)
        except OrchestrationInterrupted as exc:
            context.log.error(
                redact(
                    f"dpone: {ref.label}: interrupted; run id {run_id!r} recorded as failed "
                    f"(evidence: {exc.report.output_dir})"
                )
            )
            raise exc.cause from None
        return _Outcome(report, reused=False)

    # -- a whole step ------------------------------------------------------------------
    def materialize(
        self, context: dg.AssetExecutionContext
    ) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
        """Run every selected process of the step; yield results as each finishes.

        Use it as the body of a ``@dpone_assets`` function::

            yield from dpone.materialize(context)

        Committed processes yield a ``MaterializeResult`` (and their check result)
        even when a sibling fails; the step then ends with ``dagster.Failure``.
        """
        refs = _selected_refs(context)
        selected_checks = context.selected_asset_check_keys
        window = PartitionWindow.from_context(context) if any(r.partitioned for r in refs) else None
        self._warn_changed_manifests(context, refs)

        failed: set[dg.AssetKey] = set()
        failures: list[str] = []
        failure_meta: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        retryable = False
        for ref in refs:
            upstream = [k.to_user_string() for k in ref.sibling_deps if k in failed]
            if upstream:
                failed.add(ref.asset_key)
                failures.append(
                    f"{ref.label}: skipped because upstream {', '.join(upstream)} did not commit"
                )
                summaries.append({"asset_key": ref.asset_key.to_user_string(), "status": "skipped"})
                continue
            try:
                outcome = self._orchestrate(context, ref, window if ref.partitioned else None)
            except DponeUsageError as exc:
                failed.add(ref.asset_key)
                failures.append(redact(f"{ref.label}: invalid input: {exc}"))
                summaries.append({"asset_key": ref.asset_key.to_user_string(), "status": "invalid"})
                continue
            report = outcome.report
            metadata = report_metadata(
                report, window=window if ref.partitioned else None, reused=outcome.reused
            )
            context.log.info(redact(_summary(ref, report, outcome.reused)))
            if report.passed:
                yield dg.MaterializeResult(asset_key=ref.asset_key, metadata=metadata)
            else:
                failed.add(ref.asset_key)
                failures.append(describe_failure(ref.label, report))
                failure_meta.append(metadata)
                summaries.append(
                    {
                        "asset_key": ref.asset_key.to_user_string(),
                        "status": report.status,
                        "run_id": report.run_id,
                        "blockers": list(report.blockers),
                    }
                )
                if not outcome.invalid and not set(report.blockers) <= NON_RETRYABLE_BLOCKERS:
                    retryable = True
            check_key = dg.AssetCheckKey(ref.asset_key, CHECK_NAME)
            if check_key in selected_checks:
                yield self._check(ref, report.run_id)

        yield from self._checks_without_assets(context, refs, selected_checks)

        if failures:
            metadata_out: dict[str, Any] = dict(failure_meta[0]) if failure_meta else {}
            metadata_out["dpone/failures"] = dg.MetadataValue.json(redact_tree(summaries))
            raise dg.Failure(
                description=failure_description(failures, len(refs)),
                metadata=metadata_out,
                allow_retries=retryable,
            )

    # -- checks ------------------------------------------------------------------------
    def _check(self, ref: ProcessRef, run_id: str) -> dg.AssetCheckResult:
        return evaluate_check(
            asset_key=ref.asset_key,
            store=self.job_state_store(),
            run_id=run_id,
            manifest_path=ref.manifest_path,
            selector=ref.selector,
            is_transfer=ref.kind == "transfer",
        )

    def _checks_without_assets(
        self,
        context: dg.AssetExecutionContext,
        refs: list[ProcessRef],
        selected_checks: Any,
    ) -> Iterator[dg.AssetCheckResult]:
        """Checks selected on their own verify the latest materialization's run id."""
        materialized = {ref.asset_key for ref in refs}
        assets_def = context.assets_def
        siblings = frozenset(assets_def.keys)
        for check_key in sorted(selected_checks, key=lambda k: k.asset_key.to_user_string()):
            if check_key.name != CHECK_NAME or check_key.asset_key in materialized:
                continue
            spec = assets_def.specs_by_key[check_key.asset_key]
            ref = ProcessRef.from_spec(spec, siblings)
            run_id = _latest_run_id(context.instance, ref.asset_key)
            if run_id is None:
                yield dg.AssetCheckResult(
                    asset_key=ref.asset_key,
                    check_name=CHECK_NAME,
                    passed=False,
                    description="the asset has no dpone materialization to check yet",
                )
                continue
            yield self._check(ref, run_id)

    @staticmethod
    def _warn_changed_manifests(context: dg.AssetExecutionContext, refs: list[ProcessRef]) -> None:
        seen: dict[str, str | None] = {}
        for ref in refs:
            if ref.manifest_sha256 is None or ref.manifest_path in seen:
                continue
            seen[ref.manifest_path] = current = _sha256(ref.manifest_path)
            if current != ref.manifest_sha256:
                context.log.warning(
                    f"dpone: {ref.manifest_path} changed since the code location loaded it; "
                    "the run uses the file as it is now. Reload the code location to update "
                    "the asset definitions."
                )


def _latest_run_id(instance: dg.DagsterInstance, asset_key: dg.AssetKey) -> str | None:
    records = instance.fetch_materializations(asset_key, limit=1).records
    if not records:
        return None
    materialization = records[0].asset_materialization
    if materialization is None:
        return None
    value = materialization.metadata.get("dpone/run_id")
    return str(_raw(value)) if value is not None else None


def _summary(ref: ProcessRef, report: OrchestratedRunReport, reused: bool) -> str:
    rr: Mapping[str, Any] = (report.run_result or {}).get("result") or {}
    rows = (
        f"extracted {rr.get('extracted_rows', 0)}, inserted {rr.get('inserted_rows', 0)}, "
        f"updated {rr.get('updated_rows', 0)}, final {rr.get('final_rows')}"
    )
    blockers = f"; blockers: {', '.join(report.blockers)}" if report.blockers else ""
    again = " (already committed in this Dagster run)" if reused else ""
    return (
        f"dpone: {ref.label}: {report.status}{again}, run id {report.run_id!r}, {rows}, "
        f"{report.duration_seconds:.2f} s{blockers}"
    )
