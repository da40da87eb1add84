"""DponeResource: where dpone keeps locks, job states and evidence, and the entry points.

The resource is configuration plus thin entry points, in the style of
dagster-dbt's ``DbtCliResource``: each entry point opens a
:class:`~dpone_dagster.invocation.DponeInvocation` for the step, which runs the
selected processes (see that module for retries, partial success and checks).

* :meth:`DponeResource.materialize` -- every selected process of the step;
* :meth:`DponeResource.orchestrate` -- one process, returning its report;
* :meth:`DponeResource.run_id_for`, :meth:`DponeResource.output_dir_for` -- the
  run id and evidence directory a process gets in this step;
* :meth:`DponeResource.orchestration_backend`, :meth:`DponeResource.job_state_store`
  -- where locks and job states live (one backend per configuration and process,
  :mod:`dpone_dagster.backend_cache`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from dpone_core import defaults
from dpone_core.report import OrchestratedRunReport
from dpone_core.state import JobStateStore
from dpone_dagster.backend_cache import Backend, shared_backend
from dpone_dagster.invocation import DponeInvocation, InvocationSettings
from dpone_dagster.metadata import RESUME_POLICY_TAG
from dpone_dagster.partitions import PartitionWindow
from dpone_dagster.process_ref import ProcessRef
from dpone_dagster.run_family import absolute_dir, output_dir_for, root_run_id, run_id_for

__all__ = ["RESUME_POLICY_TAG", "DponeResource", "ProcessRef"]


# Unparametrized like Dagster's own resources: subscripting it would make pydantic build a
# new parametrized base class, so mypy's missing type argument is ignored.
class DponeResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Where dpone keeps locks, job states and evidence, and how it retries.

    Relative directories resolve against the run worker's working directory; give
    absolute paths (as ``definitions.py`` does) when the webserver, daemon and run
    workers start in different directories. Every scheduler that runs the same
    manifests (cron, Airflow, the CLI) must use the same ``lock_dir`` and
    ``state_dir`` for locks and job states to protect them from each other.
    """

    lock_dir: str = Field(default=defaults.LOCK_DIR, description="Directory of the lock files.")
    state_dir: str = Field(
        default=defaults.STATE_DIR,
        description="Directory of the <run id>.job_state.json files.",
    )
    output_root: str = Field(
        default=defaults.OUTPUT_ROOT,
        description="Evidence goes to <output_root>/<run id>[/dagster-<root run id>].",
    )
    lock_ttl_seconds: float = Field(
        default=defaults.LOCK_TTL_SECONDS,
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
        f"{defaults.ORCHESTRATION_DSN_ENV}) or a postgresql:// URL (prefer the variable: resource "
        "config is shown in the UI). Default: PostgreSQL when "
        f"{defaults.ORCHESTRATION_DSN_ENV} is set, else files.",
    )
    resume_policy: Literal["fail", "resume", "restart"] = Field(
        default=defaults.RESUME_POLICY,
        description="What to do when a run id already has a state from another Dagster run "
        "(re-executions of the same run always resume). Override per run with the run tag "
        f"{RESUME_POLICY_TAG}.",
    )
    registry: str | None = Field(
        default=None,
        description="Register committed runs in this run registry (a directory, or "
        "'postgresql' for the backend's table) and link the entry in the metadata "
        "(docs/operations.md).",
    )

    # -- where locks and job states live ------------------------------------------------
    def orchestration_backend(self) -> Backend:
        """The lock manager and job-state store, shared by every step in this process.

        A PostgreSQL backend holds connections, so one per configuration and
        process is kept (and closed at exit) instead of one per call.
        """
        return shared_backend(
            (
                self.backend,
                str(absolute_dir(self.lock_dir)),
                str(absolute_dir(self.state_dir)),
                self.lock_ttl_seconds,
            )
        )

    def job_state_store(self) -> JobStateStore:
        return self.orchestration_backend().job_state_store

    def invocation(self, context: dg.AssetExecutionContext) -> DponeInvocation:
        """The step's invocation: its selected processes and how to run them."""
        settings = InvocationSettings(
            output_root=self.output_root,
            retry_attempts=self.retry_attempts,
            retry_backoff_seconds=self.retry_backoff_seconds,
            resume_policy=self.resume_policy,
            registry=_registry_location(self.registry),
        )
        return DponeInvocation(context, settings, self.orchestration_backend())

    # -- names ----------------------------------------------------------------------------
    def run_id_for(
        self, context: dg.AssetExecutionContext, ref: ProcessRef, window: PartitionWindow | None
    ) -> str:
        """The logical run id of ``ref``'s process in this step (names its job state)."""
        return run_id_for(ref.run_id_prefix, window, root_run_id(context))

    def output_dir_for(
        self, context: dg.AssetExecutionContext, run_id: str, window: PartitionWindow | None
    ) -> Path:
        """The evidence directory of ``run_id`` in this step's Dagster run family."""
        return output_dir_for(self.output_root, run_id, window, root_run_id(context))

    # -- entry points ---------------------------------------------------------------------
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
        invocation = self.invocation(context)
        return invocation.orchestrate(invocation.ref_for(asset_key)).report

    def materialize(
        self, context: dg.AssetExecutionContext
    ) -> Iterator[dg.MaterializeResult[Any] | dg.AssetCheckResult]:
        """Run every selected process of the step; yield results as each finishes.

        Use it as the body of a ``@dpone_assets`` function::

            yield from dpone.materialize(context)

        Committed processes yield a ``MaterializeResult`` (and their check result)
        even when a sibling fails; the step then ends with ``dagster.Failure``.
        """
        yield from self.invocation(context).results()


def _registry_location(registry: str | None) -> str | None:
    """A registry directory made absolute (as the state dirs are); PostgreSQL as given."""
    if registry is None:
        return None
    from dpone_core.ops.registry_select import is_postgres_registry

    return registry if is_postgres_registry(registry) else str(absolute_dir(registry))
