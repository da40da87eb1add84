"""Immutable evidence: every invocation's report is kept, and the latest is on top.

``<output-dir>/invocations/<stamp>_<pid>_<rand>_<status>/`` holds this
invocation's ``orchestrated_run.json`` and ``.md``; the directory is written
under a temporary name and renamed into place, so it appears complete or not
at all, and nothing touches it afterwards. ``<output-dir>/orchestrated_run.*``
are then atomically replaced by hard links to those files: the newest report
is where an operator looks first, without writing (or fsyncing) it twice.

An *invocation* is one call of ``dpone orchestrate run`` (admitted or refused);
an *attempt* is an admitted one (see docs/architecture.md, "Vocabulary").
Folders written before that vocabulary are named ``attempts/``; readers here
accept both.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from dpone_core.durable import fsync_dir, write_synced
from dpone_core.report import OrchestratedRunReport

REPORT_JSON = "orchestrated_run.json"
REPORT_MD = "orchestrated_run.md"
INVOCATIONS_DIR = "invocations"
#: The folder's name before 0.2; still read, never written.
LEGACY_INVOCATIONS_DIR = "attempts"


@dataclass(frozen=True)
class EvidencePaths:
    output_dir: Path
    invocation_dir: Path

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
            "invocation_report_json": str(self.invocation_dir / REPORT_JSON),
            "invocation_report_md": str(self.invocation_dir / REPORT_MD),
            # The same paths under their pre-0.2 names, for readers of older reports.
            "attempt_report_json": str(self.invocation_dir / REPORT_JSON),
            "attempt_report_md": str(self.invocation_dir / REPORT_MD),
        }


def plan_evidence(output_dir: Path, status: str) -> EvidencePaths:
    """Choose a fresh invocation directory name (unique by time, pid and randomness)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"{stamp}_{os.getpid()}_{os.urandom(2).hex()}_{status}"
    return EvidencePaths(output_dir=output_dir, invocation_dir=output_dir / INVOCATIONS_DIR / name)


def write_evidence(paths: EvidencePaths, report: OrchestratedRunReport) -> None:
    """Write the invocation's folder, then point the latest report at it.

    Raises OSError when it cannot; a folder it could not finish is removed, so
    no reader ever finds half an invocation.
    """
    invocations = paths.invocation_dir.parent
    staging = invocations / f".{paths.invocation_dir.name}.tmp"
    try:
        staging.mkdir()
    except FileNotFoundError:  # the first invocation for this output dir
        invocations.mkdir(parents=True, exist_ok=True)
        staging.mkdir()
    try:
        write_synced(staging / REPORT_JSON, report.to_json())
        write_synced(staging / REPORT_MD, report.to_markdown())
        os.rename(staging, paths.invocation_dir)  # fails rather than replace an earlier one
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    fsync_dir(invocations)
    # The top-level names are conveniences pointing at the durable invocation copy:
    # replaced atomically, but not fsynced (a crash can only leave the previous
    # latest report there, which is still a complete, true report).
    for name in (REPORT_JSON, REPORT_MD):
        link = paths.output_dir / f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        os.link(paths.invocation_dir / name, link)
        os.replace(link, paths.output_dir / name)


def read_latest_report(
    output_dir: Path, status: str, *, run_id: str | None = None, since: str = ""
) -> OrchestratedRunReport | None:
    """The newest immutable report with ``status`` under ``output_dir``.

    Only reports of ``run_id`` (when given) that started at or after ``since``
    (an ISO-8601 UTC time as the engine writes it) count. Unreadable reports
    are skipped: evidence is read, never trusted blindly.
    """
    candidates: list[tuple[str, Path]] = []
    for folder in (INVOCATIONS_DIR, LEGACY_INVOCATIONS_DIR):
        base = output_dir / folder
        try:
            names = [p.name for p in base.iterdir() if p.name.endswith(f"_{status}")]
        except OSError:
            continue
        candidates += [(name, base / name) for name in names]
    for _, path in sorted(candidates, reverse=True):
        try:
            report = OrchestratedRunReport.model_validate_json(
                (path / REPORT_JSON).read_text(encoding="utf-8")
            )
        except (OSError, ValueError):
            continue
        if report.status != status or (run_id is not None and report.run_id != run_id):
            continue
        if report.started_at >= since:
            return report
    return None


def check_output_dir(output_dir: Path) -> str | None:
    """Why evidence cannot go to ``output_dir`` (creating it if missing), or None.

    Asked before anything is locked or admitted, so an unusable directory is
    invalid input, not a failure discovered after the run.
    """
    try:
        if not output_dir.is_dir():
            output_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        return f"cannot be created ({exc.strerror or exc})"
    if not os.access(output_dir, os.W_OK | os.X_OK):
        return "is not writable"
    return None
