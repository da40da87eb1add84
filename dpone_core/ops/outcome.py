"""A run result file, read into one :class:`RunOutcome`: what ran, how it ended, when.

Two formats are accepted, told apart by their keys:

- the **orchestrated report** (``dpone orchestrate run --format json``, or the
  ``orchestrated_run.json`` evidence file): ``lock_key`` and ``job_state`` at the
  top level. The attempt's times come from the job state's transitions (the
  ``running`` transition and the one that ended the attempt), falling back to the
  report's ``started_at``/``finished_at``;
- the **plain run result** (``dpone run --format json``): ``attempts`` and
  ``result`` at the top level; its attempt number is 1 and its times are those of
  its tries.

Both are parsed with pydantic models that ignore keys they do not use (the
formats belong to other modules and may grow); a key they use with the wrong type
is an :class:`~dpone_core.ops.errors.OpsInputError` naming the file and field.
:func:`outcome_from_document` is pure; :func:`read_outcome` is the file edge.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dpone_core.clock import parse_utc, utc_iso
from dpone_core.ops.errors import OpsInputError

__all__ = [
    "MAX_RESULT_BYTES",
    "RowCounts",
    "RunOutcome",
    "outcome_from_document",
    "read_outcome",
]

#: A run result is a few kilobytes; anything far larger is not one.
MAX_RESULT_BYTES = 64 * 1024 * 1024

SourceKind = Literal["orchestrated_run", "run_result"]


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)


class _Try(_Loose):
    attempt: int | None = None
    status: str | None = None
    started_at: str | None = None
    duration_seconds: float | None = None
    error: str | None = None


class _Result(_Loose):
    status: str | None = None
    extracted_rows: int | None = None
    inserted_rows: int | None = None
    updated_rows: int | None = None
    final_rows: int | None = None
    duration_seconds: float | None = None
    errors: list[str] = Field(default_factory=list)
    load_id: str | None = None
    exit_code: int | None = None


class _RunResultDoc(_Loose):
    passed: bool
    run_id: str = Field(min_length=1)
    process: str = Field(min_length=1)
    attempts: list[_Try] = Field(default_factory=list)
    result: _Result | None = None


class _Transition(_Loose):
    status: str
    at: str
    attempt: int | None = None
    reason: str | None = None


class _JobStateDoc(_Loose):
    attempt: int = Field(ge=1)
    transitions: list[_Transition] = Field(default_factory=list)


class _ReportDoc(_Loose):
    passed: bool
    status: Literal["committed", "failed", "blocked"]
    run_id: str = Field(min_length=1)
    process: str = Field(min_length=1)
    selector: str | None = None
    manifest_path: str | None = None
    lock_key: str
    blockers: list[str] = Field(default_factory=list)
    run_result: _RunResultDoc | None = None
    job_state: _JobStateDoc | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    evidence: dict[str, str] = Field(default_factory=dict)
    job_state_path: str | None = None
    output_dir: str | None = None


class RowCounts(BaseModel):
    """The row counts of a transfer (None for a command, or when the run did not say)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    extracted: int | None = None
    inserted: int | None = None
    updated: int | None = None
    final: int | None = None

    @property
    def written(self) -> int | None:
        """Rows written to the target: inserted plus updated (None when neither is known)."""
        if self.inserted is None and self.updated is None:
            return None
        return (self.inserted or 0) + (self.updated or 0)


class RunOutcome(BaseModel):
    """What one run (one admitted attempt of a run id) did, in the registry's words."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source_kind: SourceKind
    run_id: str
    #: The job state's attempt number (admitted attempts of the run id); 1 for a plain run.
    attempt: int = Field(ge=1)
    process: str
    selector: str | None = None
    manifest_path: str | None = None
    #: ``committed``/``failed``/``blocked`` (orchestrated) or ``passed``/``failed`` (plain).
    status: Literal["committed", "failed", "blocked", "passed"]
    passed: bool
    #: Whether the process executed at all (a refused invocation ran nothing).
    executed: bool
    process_kind: Literal["transfer", "command"] | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_seconds: float | None = None
    tries: int = 0
    rows: RowCounts = Field(default_factory=RowCounts)
    load_id: str | None = None
    exit_code: int | None = None
    errors: list[str] = Field(default_factory=list)
    blockers: list[str] = Field(default_factory=list)
    lock_key: str | None = None
    #: Evidence paths the report names (report files, job state, output dir).
    evidence: dict[str, str] = Field(default_factory=dict)


def _field_path(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "(top level)"


def _invalid(source: str, exc: ValidationError, what: str) -> OpsInputError:
    first = exc.errors()[0]
    return OpsInputError(source, _field_path(first), f"expected {what}: {first['msg']}")


def _utc(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return utc_iso(parse_utc(value))
    except ValueError:
        return None


def _end_of_tries(tries: list[_Try]) -> str | None:
    for one in reversed(tries):
        if one.started_at is not None and one.duration_seconds is not None:
            try:
                start = parse_utc(one.started_at)
            except ValueError:
                return None
            return utc_iso(start + timedelta(seconds=one.duration_seconds))
    return None


def _errors(run: _RunResultDoc | None) -> list[str]:
    if run is None:
        return []
    found: list[str] = []
    for text in [*(run.result.errors if run.result else []), *(t.error for t in run.attempts)]:
        if text and text not in found:
            found.append(text)
    return found


def _run_fields(run: _RunResultDoc | None) -> dict[str, Any]:
    """The fields every format takes from its (plain) run result."""
    result = run.result if run is not None else None
    kind: Literal["transfer", "command"] | None = None
    if result is not None:
        kind = "command" if result.exit_code is not None else "transfer"
        if result.load_id is None and result.extracted_rows is None and kind == "transfer":
            kind = None
    return {
        "executed": run is not None,
        "process_kind": kind,
        "tries": len(run.attempts) if run is not None else 0,
        "rows": RowCounts(
            extracted=result.extracted_rows if result else None,
            inserted=result.inserted_rows if result else None,
            updated=result.updated_rows if result else None,
            final=result.final_rows if result else None,
        ),
        "load_id": result.load_id if result else None,
        "exit_code": result.exit_code if result else None,
        "errors": _errors(run),
    }


def _attempt_times(report: _ReportDoc) -> tuple[str | None, str | None]:
    """(start, end) of the report's attempt, from its job state, else the report's times."""
    start, end = report.started_at, report.finished_at
    state = report.job_state
    if state is not None and report.run_result is not None:
        mine = [t for t in state.transitions if t.attempt in (None, state.attempt)]
        ended = [t for t in mine if t.status in ("committed", "failed", "blocked")]
        if mine:
            start = mine[0].at  # the attempt's admission (``started``)
        if ended:
            end = ended[-1].at
    return _utc(start), _utc(end)


def _from_report(report: _ReportDoc) -> RunOutcome:
    start, end = _attempt_times(report)
    attempt = report.job_state.attempt if report.job_state is not None else 1
    return RunOutcome(
        source_kind="orchestrated_run",
        run_id=report.run_id,
        attempt=attempt,
        process=report.process,
        selector=report.selector,
        manifest_path=report.manifest_path,
        status=report.status,
        passed=report.passed,
        started_at=start,
        finished_at=end,
        duration_seconds=report.duration_seconds,
        blockers=list(report.blockers),
        lock_key=report.lock_key,
        evidence={
            **report.evidence,
            **({"job_state": report.job_state_path} if report.job_state_path else {}),
            **({"output_dir": report.output_dir} if report.output_dir else {}),
        },
        **_run_fields(report.run_result),
    )


def _from_run_result(run: _RunResultDoc) -> RunOutcome:
    start = _utc(run.attempts[0].started_at) if run.attempts else None
    durations = [t.duration_seconds for t in run.attempts if t.duration_seconds is not None]
    return RunOutcome(
        source_kind="run_result",
        run_id=run.run_id,
        attempt=1,
        process=run.process,
        status="passed" if run.passed else "failed",
        passed=run.passed,
        started_at=start,
        finished_at=_end_of_tries(run.attempts),
        duration_seconds=sum(durations) if durations else None,
        **_run_fields(run),
    )


def outcome_from_document(document: Any, source: str) -> RunOutcome:
    """The outcome a parsed JSON document describes; ``source`` names it in errors."""
    if not isinstance(document, dict):
        raise OpsInputError(source, "", "expected a JSON object (a dpone run result)")
    if "lock_key" in document and "run_result" in document:
        try:
            return _from_report(_ReportDoc.model_validate(document))
        except ValidationError as exc:
            raise _invalid(source, exc, "an orchestrated run report") from None
    if "attempts" in document and "passed" in document:
        try:
            return _from_run_result(_RunResultDoc.model_validate(document))
        except ValidationError as exc:
            raise _invalid(source, exc, "a dpone run result") from None
    raise OpsInputError(
        source,
        "",
        "expected an orchestrated run report (keys lock_key, run_result, ...) or a dpone "
        "run result (keys passed, attempts, result, ...)",
    )


def read_outcome(path: str | os.PathLike[str]) -> tuple[RunOutcome, bytes]:
    """Read and parse a run result file; returns the outcome and the file's bytes."""
    file = Path(os.fspath(path))
    shown = os.fspath(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_RESULT_BYTES + 1)
    except OSError as exc:
        raise OpsInputError(
            shown, "", f"cannot read the run result: {exc.strerror or exc}"
        ) from None
    if len(data) > MAX_RESULT_BYTES:
        raise OpsInputError(shown, "", f"expected a run result under {MAX_RESULT_BYTES} bytes")
    if not data.strip():
        raise OpsInputError(shown, "", "the file is empty; expected a dpone run result (JSON)")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OpsInputError(shown, "", f"expected JSON: {exc}") from None
    return outcome_from_document(document, shown), data
