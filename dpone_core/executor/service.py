"""``RunManifestService``: the canonical way to execute one manifest process.

It owns the per-run retry loop and nothing else: locks, job state and evidence
belong to the orchestrator that wraps it (``dpone_core.run``). Invalid input (a
``DponeUsageError`` such as a ``ManifestError``) is never retried -- retrying cannot
fix a manifest -- and interrupts (``KeyboardInterrupt``, ``SystemExit``) propagate at
once so that the orchestrator can record the attempt as failed and release its lock.

Words: a *try* is one execution of the process inside this loop; the
orchestrator's *attempt* (``job_attempt``) is the admitted unit around all tries.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from dpone_core.clock import utc_now, utc_now_iso
from dpone_core.errors import DponeUsageError
from dpone_core.executor.command import run_command
from dpone_core.executor.context import ProcessContext
from dpone_core.executor.request import RunRequest
from dpone_core.executor.results import ProcessResult, RunResult, TryRecord
from dpone_core.logical_run import (
    LogicalDate,
    logical_run_id,
    manifest_identity,
    parse_execution_date,
)
from dpone_core.manifest import (
    CommandProcess,
    ProcessSpec,
    TransferProcess,
    load_manifest,
    resolved_connections,
)
from dpone_core.redact import redact, register_environment_secrets
from dpone_core.text import escape_control

__all__ = ["RunManifestService", "default_run_id", "manifest_identity"]


def default_run_id(
    selector: str, manifest_path: str | Path | None = None, execution_date: str | None = None
) -> str:
    """The run id used when none is given, by the run-id rule of :mod:`dpone_core.logical_run`.

    ``<manifest>.<selector>_<logical date>``, the logical date being
    ``execution_date`` (``--execution-date``) or else today's UTC date: one run id
    per process per logical date, so a daily schedule that fires twice for the same
    day hits the same job state (refused or resumed) instead of loading the day
    twice. Without a manifest path: ``<selector>_<date>``.
    """
    logical = (
        parse_execution_date(execution_date)
        if execution_date is not None
        else LogicalDate.of(utc_now())
    )
    return logical_run_id(selector, logical, manifest_path)


def _run_transfer(process: TransferProcess, ctx: ProcessContext) -> ProcessResult:
    # Imported lazily: the transfer engine pulls in SQLAlchemy, which ``dpone --help``
    # and command-only manifests must not pay for.
    try:
        from dpone_core.executor.transfer import (  # type: ignore[import-not-found, unused-ignore]
            run_transfer,
        )
    except ImportError as exc:
        return ProcessResult(
            status="failed", errors=[redact(f"the transfer engine is unavailable: {exc}")]
        )
    result: ProcessResult = run_transfer(process, ctx)
    return result


def _dispatch(process: ProcessSpec, ctx: ProcessContext) -> ProcessResult:
    if isinstance(process, CommandProcess):
        return run_command(process, ctx)
    return _run_transfer(process, ctx)


def _register_secrets(request: RunRequest, process: ProcessSpec) -> None:
    """Register every secret the try can see, so that whatever echoes one is masked.

    The environment the command inherits, the request's extra variables and the
    process's own ``env:`` (connection passwords were registered when the manifest's
    connections were resolved).
    """
    register_environment_secrets(os.environ)
    register_environment_secrets(request.env)
    if isinstance(process, CommandProcess):
        register_environment_secrets(process.env)


def _redacted(result: ProcessResult) -> ProcessResult:
    """Belt and braces: whatever a process kind returns is redacted before it is kept."""
    return result.model_copy(
        update={
            "errors": [redact(error) for error in result.errors],
            "stdout_tail": None if result.stdout_tail is None else redact(result.stdout_tail),
            "stderr_tail": None if result.stderr_tail is None else redact(result.stderr_tail),
        }
    )


class RunManifestService:
    """Load a manifest, select a process and run it with retry/backoff.

    ``progress`` receives human-readable progress lines (default: the current
    ``sys.stderr``; stdout is reserved for reports). ``sleep`` is injectable so that
    tests and embedders control the backoff wait.
    """

    def __init__(
        self,
        progress: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._progress = progress
        self._sleep = sleep

    @property
    def progress(self) -> TextIO:
        # Resolved late so that a replaced sys.stderr (pytest, daemons) is honoured.
        return self._progress if self._progress is not None else sys.stderr

    def _log(self, message: str) -> None:
        # Run ids, keys and errors may hold newlines or escape codes: one line, always.
        print(f"dpone: {escape_control(redact(message))}", file=self.progress, flush=True)

    def execute(self, request: RunRequest) -> RunResult:
        """Run ``request``; raises ``ManifestError``/``DponeUsageError`` for invalid input."""
        loaded = load_manifest(request.manifest_path)
        name, process = loaded.select(request.selector)
        run_id = request.run_id or default_run_id(name, loaded.path, request.execution_date)
        connections = resolved_connections(loaded)
        _register_secrets(request, process)
        tries = request.retry_attempts + 1
        checkpoint: dict[str, Any] | None = request.checkpoint
        records: list[TryRecord] = []
        result: ProcessResult | None = None

        for try_number in range(1, tries + 1):
            ctx = ProcessContext(
                manifest_path=loaded.path,
                process_name=name,
                run_id=run_id,
                try_number=try_number,
                job_attempt=request.job_attempt,
                generation=request.generation,
                connections=connections,
                checkpoint=checkpoint,
                env=dict(request.env),
                window_start=request.window_start,
                window_end=request.window_end,
                progress=self.progress,
            )
            label = f"{name}: run {run_id} try {try_number}/{tries}"
            self._log(f"{label} started ({process.kind})")
            result, record = self._one_try(process, ctx)
            records.append(record)
            if result.checkpoint is not None:
                # A later try continues from the furthest point an earlier one reached.
                checkpoint = result.checkpoint
            if record.error is None:
                self._log(f"{label} passed")
                break
            self._after_failed_try(label, record.error, request, try_number, tries)

        assert result is not None  # tries >= 1
        return RunResult(
            passed=result.status == "passed",
            run_id=run_id,
            process=name,
            attempts=records,
            result=result,
        )

    @staticmethod
    def _one_try(process: ProcessSpec, ctx: ProcessContext) -> tuple[ProcessResult, TryRecord]:
        """One try; a failure of the process is a failed result, invalid input propagates."""
        started_at = utc_now_iso()
        started = time.monotonic()
        try:
            result = _dispatch(process, ctx)
        except DponeUsageError:
            raise
        except Exception as exc:  # a failed try, not a crash of the run
            result = ProcessResult(
                status="failed",
                duration_seconds=time.monotonic() - started,
                errors=[f"{type(exc).__name__}: {exc}"],
            )
        result = _redacted(result)
        error = None
        if result.status != "passed":
            error = "; ".join(result.errors) or "failed without an error message"
        record = TryRecord(
            attempt=ctx.try_number,
            status=result.status,
            started_at=started_at,
            duration_seconds=time.monotonic() - started,
            error=error,
        )
        return result, record

    def _after_failed_try(
        self, label: str, error: str, request: RunRequest, try_number: int, tries: int
    ) -> None:
        """Say what happens next, and wait out the backoff before another try."""
        if try_number < tries:
            backoff = request.retry_backoff_seconds
            self._log(f"{label} failed: {error}; retrying in {backoff:g}s")
            if backoff > 0:
                self._sleep(backoff)
        else:
            noun = "try" if tries == 1 else "tries"
            self._log(f"{label.rsplit(' try ', 1)[0]} failed after {tries} {noun}: {error}")
