"""The CLI's flag table: every ``dpone orchestrate run`` flag, and an invocation as argv.

The parser (:mod:`dpone_core.cli`) declares its flags from this table,
and scheduler handoffs render their command line with :func:`orchestrate_run_argv`,
so a flag is spelled in exactly one place. The orchestrator passes neutral
values (field names of the request and of the backend's settings) and never
knows a flag. Imports nothing, so any layer may use it.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ORCHESTRATE_RUN_FLAGS", "flag", "orchestrate_run_argv"]

#: Field name -> flag, in the order a rendered command line lists them.
ORCHESTRATE_RUN_FLAGS: dict[str, str] = {
    "manifest_path": "--manifest",
    "selector": "--selector",
    "run_id": "--run-id",
    "execution_date": "--execution-date",
    "retry_attempts": "--retry-attempts",
    "retry_backoff_seconds": "--retry-backoff-seconds",
    "concurrency_key": "--concurrency-key",
    "lock_dir": "--lock-dir",
    "lock_ttl_seconds": "--lock-ttl-seconds",
    "state_dir": "--state-dir",
    "backend": "--backend",
    "backend_schema": "--backend-schema",
    "resume_policy": "--resume-policy",
    "output_dir": "--output-dir",
    "output_root": "--output-root",
    "schedule": "--schedule",
    "dag_id": "--dag-id",
    "scheduler": "--scheduler",
    "scheduler_run_id": "--scheduler-run-id",
    "format": "--format",
    # After the run: register it (dpone_core.cli_ops) and export its OpenLineage events.
    "registry": "--registry",
    "lineage": "--lineage",
    "lineage_spool": "--lineage-spool",
    # A switch: rendered bare when True. Scheduler handoffs never pass it (a deliberate
    # repeat is a one-off, not a schedule).
    "allow_duplicate_load": "--allow-duplicate-load",
}


def flag(field: str) -> str:
    """The flag of ``field`` (a KeyError names a field the CLI does not have)."""
    return ORCHESTRATE_RUN_FLAGS[field]


def _text(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def orchestrate_run_argv(values: Mapping[str, object]) -> list[str]:
    """``["orchestrate", "run", --flag value, ...]`` for every field of ``values`` that is set."""
    unknown = set(values) - set(ORCHESTRATE_RUN_FLAGS)
    if unknown:
        raise KeyError(f"no dpone orchestrate run flag for {sorted(unknown)}")
    argv = ["orchestrate", "run"]
    for field, name in ORCHESTRATE_RUN_FLAGS.items():
        value = values.get(field)
        if value is True:
            argv.append(name)
        elif value is not None and value is not False:
            argv += [name, _text(value)]
    return argv
