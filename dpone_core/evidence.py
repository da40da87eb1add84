"""Immutable evidence: every invocation's report is kept, and the latest is on top.

``<output-dir>/attempts/<stamp>_<pid>_<rand>_<status>/`` holds this
invocation's ``orchestrated_run.json`` and ``.md``; the directory is written
under a temporary name and renamed into place, so it appears complete or not
at all, and nothing touches it afterwards. ``<output-dir>/orchestrated_run.*``
are then atomically replaced by hard links to those files: the newest report
is where an operator looks first, without writing (or fsyncing) it twice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dpone_core.durable import fsync_dir, write_synced
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
    attempts = paths.attempt_dir.parent
    staging = attempts / f".{paths.attempt_dir.name}.tmp"
    try:
        staging.mkdir()
    except FileNotFoundError:  # the first invocation for this output dir
        attempts.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    write_synced(staging / REPORT_JSON, report.to_json())
    write_synced(staging / REPORT_MD, report.to_markdown())
    os.rename(staging, paths.attempt_dir)  # fails rather than replace an existing attempt
    fsync_dir(attempts)
    # The top-level names are conveniences pointing at the durable attempt copy:
    # replaced atomically, but not fsynced (a crash can only leave the previous
    # latest report there, which is still a complete, true report).
    for name in (REPORT_JSON, REPORT_MD):
        link = paths.output_dir / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        os.link(paths.attempt_dir / name, link)
        os.replace(link, paths.output_dir / name)
