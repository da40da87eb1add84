"""Plugins that pass a finished run's report on to whoever launched dpone.

The engine knows no orchestrator: a package registers a hook under the entry-point
group ``dpone.report_hooks`` (``dpone_dagster`` registers the one that reports to
Dagster when Dagster Pipes launched ``dpone orchestrate run``). Hooks are looked up
only when the environment says a launcher is listening, so a plain run reads no
package metadata and imports nothing more.
"""

from __future__ import annotations

import os
from typing import Final

from dpone_core.report import OrchestratedRunReport

__all__ = ["HOOK_GROUP", "LAUNCHER_ENV", "run_report_hooks"]

#: The entry-point group of report hooks: ``callable(report) -> None``.
HOOK_GROUP: Final = "dpone.report_hooks"
#: Variables a launcher sets when it listens for the outcome (Dagster Pipes' context).
LAUNCHER_ENV: Final = ("DAGSTER_PIPES_CONTEXT",)


def run_report_hooks(report: OrchestratedRunReport) -> None:
    """Call every registered hook with ``report`` when a launcher is listening."""
    if not any(os.environ.get(name) for name in LAUNCHER_ENV):
        return
    from importlib.metadata import entry_points

    for hook in entry_points(group=HOOK_GROUP):
        hook.load()(report)
