"""The sections of a dpone ``defs.yaml``: what each field means and what it becomes.

Each section is a ``dg.Resolvable`` model (extra fields forbidden, so a typo'd
field is refused with its name) and converts itself into what the Python API
takes:

* :class:`DponeTranslationSettings` -> the constructor of
  :class:`~dpone_dagster.components.translator.ComponentDponeTranslator`;
* :class:`DponeOpSettings` -> ``build_dpone_assets(op_tags=, retry_policy=,
  max_processes_per_op=)``;
* :class:`DponeResourceSettings` -> a :class:`~dpone_dagster.resource.DponeResource`.

Relative paths are relative to the directory of the ``defs.yaml`` (docs/dagster-components.md).
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import dagster as dg
from pydantic import ConfigDict, Field, field_validator, model_validator

from dpone_core import defaults
from dpone_dagster.factory import MAX_PROCESSES_PER_OP
from dpone_dagster.resource import DponeResource

__all__ = [
    "CONCURRENCY_KEY_TAG",
    "PLACEHOLDERS",
    "DponeOpSettings",
    "DponeResourceSettings",
    "DponeRetryPolicySettings",
    "DponeTranslationSettings",
    "doc",
    "resolve_path",
]

#: The op tag Dagster reads as an op's pool when the op sets none itself.
CONCURRENCY_KEY_TAG = "dagster/concurrency_key"
#: The ``{placeholders}`` that ``group_name`` and ``run_id_prefix`` may use.
PLACEHOLDERS = ("manifest", "selector")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


#: One resource object per distinct settings (see DponeResourceSettings.to_resource).
_RESOURCES: dict[tuple[tuple[str, str], ...], DponeResource] = {}


def doc(description: str) -> dg.Resolver:
    """A field's description, as Dagster shows it (``dg`` schemas, editors)."""
    resolver: dg.Resolver = dg.Resolver.default(description=description)
    return resolver


def resolve_path(base: Path, value: str) -> Path:
    """``value`` as an absolute, normalised path: relative ones are relative to ``base``."""
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else base / path).resolve()


def _check_placeholders(value: str | None) -> str | None:
    """Refuse ``{names}`` other than :data:`PLACEHOLDERS` (and malformed braces)."""
    if value is None:
        return None
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(value) if field is not None]
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid template: {exc}") from exc
    unknown = [name for name in names if name not in PLACEHOLDERS]
    if unknown:
        allowed = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {value!r}; use {allowed}")
    return value


class DponeTranslationSettings(dg.Resolvable, dg.Model):
    """``translation:``: the knobs of ``DagsterDponeTranslator``, without writing Python."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    key_prefix: Annotated[
        str | list[str] | None,
        doc(
            "Prefix of every asset key and dep (tables and commands), e.g. 'lake' or "
            "['lake', 'raw']: warehouse/landing_orders becomes lake/warehouse/landing_orders."
        ),
    ] = None
    group_name: Annotated[
        str | None,
        doc(
            "Group of every asset (default: the manifest's name). May use {manifest} "
            "and {selector}."
        ),
    ] = None
    tags: Annotated[
        dict[str, str],
        doc("Tags added to every asset (over the manifest's tags)."),
    ] = Field(default_factory=dict)
    kinds: Annotated[
        list[str],
        doc("Kinds added to every asset (besides dpone, sqlite...)."),
    ] = Field(default_factory=list)
    owners: Annotated[
        list[str],
        doc("Owners added to every asset (besides the manifest's): emails or team:name."),
    ] = Field(default_factory=list)
    metadata: Annotated[
        dict[str, Any],
        doc("Definition metadata added to every asset (dpone/* keys cannot be replaced)."),
    ] = Field(default_factory=dict)
    run_id_prefix: Annotated[
        str | None,
        doc(
            "Start of every run id (default: the selector), e.g. '{manifest}.{selector}'"
            " when two manifests share a selector. Changing it starts new job states."
        ),
    ] = None
    automation_condition: Annotated[
        dg.AutomationCondition[Any] | None,
        dg.Resolver.default(
            model_field_type=str | None,
            description="Automation condition of every asset, e.g. "
            "'{{ dg.AutomationCondition.eager() }}'.",
        ),
    ] = None

    _group_placeholders = field_validator("group_name", "run_id_prefix")(_check_placeholders)


class DponeRetryPolicySettings(dg.Resolvable, dg.Model):
    """``op.retry_policy:``: a Dagster ``RetryPolicy`` of every op (retries skip what committed)."""

    max_retries: Annotated[
        int,
        doc("Retries of a failed step."),
    ] = Field(default=1, ge=0)
    delay: Annotated[
        float | None,
        doc("Seconds before a retry."),
    ] = Field(default=None, ge=0)
    backoff: Annotated[
        Literal["linear", "exponential"] | None,
        doc("How the delay grows between retries."),
    ] = None
    jitter: Annotated[
        Literal["full", "plus_minus"] | None,
        doc("Random variation of the delay."),
    ] = None

    @model_validator(mode="after")
    def _delay_first(self) -> Self:
        if self.delay is None and (self.backoff or self.jitter):
            raise ValueError("backoff and jitter need a delay (seconds)")
        return self

    def to_retry_policy(self) -> dg.RetryPolicy:
        return dg.RetryPolicy(
            max_retries=self.max_retries,
            delay=self.delay,
            backoff=dg.Backoff[self.backoff.upper()] if self.backoff else None,
            jitter=dg.Jitter[self.jitter.upper()] if self.jitter else None,
        )


class DponeOpSettings(dg.Resolvable, dg.Model):
    """``op:``: what Dagster sets per op (a manifest's processes run in one op)."""

    tags: Annotated[
        dict[str, str],
        doc("Tags of every op."),
    ] = Field(default_factory=dict)
    pool: Annotated[
        str | None,
        doc(
            "Dagster pool of every op. Processes with a concurrency_key already use it "
            "as their pool: a process whose concurrency_key differs is refused at load."
        ),
    ] = None
    retry_policy: Annotated[
        DponeRetryPolicySettings | None,
        doc("Dagster retry policy of every op."),
    ] = None
    max_processes_per_op: Annotated[
        int,
        doc(
            "A manifest with more processes (of one partitions/pool group) is split "
            "into several ops."
        ),
    ] = Field(default=MAX_PROCESSES_PER_OP, ge=1)

    def op_tags(self) -> dict[str, str]:
        tags = dict(self.tags)
        if self.pool is not None:
            tags[CONCURRENCY_KEY_TAG] = self.pool
        return tags


class DponeResourceSettings(dg.Resolvable, dg.Model):
    """``resource:``: the :class:`DponeResource` the component builds (no Python needed)."""

    lock_dir: Annotated[
        str | None,
        doc("Lock files (default: <project root>/.dpone/locks)."),
    ] = None
    state_dir: Annotated[
        str | None,
        doc("Job-state files (default: <project root>/.dpone/orchestration-state)."),
    ] = None
    output_root: Annotated[
        str | None,
        doc(
            "Evidence goes under <output_root>/<run id> "
            "(default: <project root>/.dpone/orchestration)."
        ),
    ] = None
    lock_ttl_seconds: Annotated[
        float,
        doc("Age after which the lock of an uncheckable holder (another host) is retired."),
    ] = Field(default=defaults.LOCK_TTL_SECONDS, gt=0)
    retry_attempts: Annotated[
        int,
        doc("Extra tries of the underlying run after a failed one."),
    ] = Field(default=0, ge=0)
    retry_backoff_seconds: Annotated[
        float,
        doc("Pause between tries."),
    ] = Field(default=0.0, ge=0)
    resume_policy: Annotated[
        Literal["fail", "resume", "restart"],
        doc(
            "What a run id that already has a state from another Dagster run does "
            "(the run tag dpone/resume_policy overrides it per run)."
        ),
    ] = "fail"
    registry: Annotated[
        str | None,
        doc(
            "Register committed runs in this run registry (a directory, relative to this "
            "file, or 'postgresql') and link each entry in the metadata."
        ),
    ] = None
    backend: Annotated[
        Literal["files", "postgresql"] | None,
        doc(
            "Where locks and job states live. Default: PostgreSQL when the DSN variable "
            f"({defaults.ORCHESTRATION_DSN_ENV}, or backend_dsn_env) is set, else files."
        ),
    ] = None
    backend_dsn_env: Annotated[
        str | None,
        doc(
            "Name of the environment variable holding the PostgreSQL backend's DSN "
            f"(default: {defaults.ORCHESTRATION_DSN_ENV}). Read where the run executes; the DSN "
            "itself never appears in defs.yaml or in the UI."
        ),
    ] = None

    @field_validator("backend_dsn_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_backend(self) -> Self:
        if self.backend_dsn_env is not None and self.backend == "files":
            raise ValueError(
                "backend_dsn_env names a PostgreSQL DSN variable but backend is 'files'; "
                "drop one of them"
            )
        return self

    def to_resource(self, base: Path, project_root: Path) -> DponeResource:
        """The resource, with relative directories resolved against ``base``.

        Equal settings give the *same* object: Dagster merges the definitions of
        several components only when a resource key maps to one object, so two dpone
        components with the same resource settings can share ``resource_key``.
        """
        home = project_root / ".dpone"
        fields: dict[str, Any] = {
            "lock_dir": str(self._dir(base, self.lock_dir, home / "locks")),
            "state_dir": str(self._dir(base, self.state_dir, home / "orchestration-state")),
            "output_root": str(self._dir(base, self.output_root, home / "orchestration")),
            "lock_ttl_seconds": self.lock_ttl_seconds,
            "retry_attempts": self.retry_attempts,
            "retry_backoff_seconds": self.retry_backoff_seconds,
            "resume_policy": self.resume_policy,
            "registry": self._registry(base),
            "backend": self._backend(),
        }
        key = tuple((name, f"{type(value).__name__}:{value!r}") for name, value in fields.items())
        return _RESOURCES.setdefault(key, DponeResource(**fields))

    def _registry(self, base: Path) -> str | None:
        if self.registry is None or self.registry == "postgresql":
            return self.registry
        return str(resolve_path(base, self.registry))

    @staticmethod
    def _dir(base: Path, value: str | None, default: Path) -> Path:
        return resolve_path(base, value) if value else default.resolve()

    def _backend(self) -> Any:
        """``files``/``postgresql``/None, or the DSN variable as a ``dg.EnvVar``.

        A ``dg.EnvVar`` is read where the resource is initialised (the run worker) and
        only its name is shown in the UI, so the DSN never reaches the repository snapshot.
        """
        if self.backend_dsn_env is None:
            return self.backend
        return dg.EnvVar(self.backend_dsn_env)
