"""Immutable evidence: every invocation's report is kept, and the latest is on top.

``<output-dir>/attempts/<stamp>_<pid>_<status>/`` gets a copy no later run
touches; ``<output-dir>/orchestrated_run.{json,md}`` is atomically replaced by
the newest invocation so an operator finds it where they expect.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dpone_core.durable import atomic_write_text, create_exclusive_text, fsync_dir
from dpone_core.report import OrchestratedRunReport

REPORT_JSON = "orchestrated_run.json"
REPORT_MD = "orchestrated_run.md"


@dataclass(frozen=True)
class EvidencePaths:
    output_dir: Path
    attempt_dir: Path

    @property
    def report_json(self) -> Path:
        return self.output_dir / REPORT_JSON

    @property
    def report_md(self) -> Path:
        return self.output_dir / REPORT_MD

    def as_dict(self) -> dict[str, str]:
        return {
            "report_json": str(self.report_json),
            "report_md": str(self.report_md),
            "attempt_report_json": str(self.attempt_dir / REPORT_JSON),
            "attempt_report_md": str(self.attempt_dir / REPORT_MD),
        }


def plan_evidence(output_dir: Path, status: str) -> EvidencePaths:
    """Choose a fresh attempt directory name (unique by time, pid and randomness)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}_{os.getpid()}_{os.urandom(2).hex()}_{status}"
    return EvidencePaths(output_dir=output_dir, attempt_dir=output_dir / "attempts" / name)


def write_evidence(paths: EvidencePaths, report: OrchestratedRunReport) -> None:
    as_json = report.to_json()
    as_md = report.to_markdown()
    paths.attempt_dir.mkdir(parents=True, exist_ok=False)
    create_exclusive_text(paths.attempt_dir / REPORT_JSON, as_json)
    create_exclusive_text(paths.attempt_dir / REPORT_MD, as_md)
    fsync_dir(paths.attempt_dir.parent)
    atomic_write_text(paths.report_json, as_json, sync_dir=False)
    atomic_write_text(paths.report_md, as_md, sync_dir=False)
    fsync_dir(paths.output_dir)
