"""What one run of a manifest process produced (the ``run_result`` of every report)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ProcessResult(BaseModel):
    """Outcome of the last attempt of one process, whatever its kind."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["passed", "failed"]
    extracted_rows: int = 0
    inserted_rows: int = 0
    updated_rows: int = 0
    final_rows: int | None = None
    duration_seconds: float = 0.0
    errors: list[str] = Field(default_factory=list)
    load_id: str | None = None
    watermark_before: Any = None
    watermark_after: Any = None
    exit_code: int | None = None
    stdout_tail: str | None = None
    stderr_tail: str | None = None
    #: Opaque resume point the process kind understands (kept in the job state).
    checkpoint: dict[str, Any] | None = None


class TryRecord(BaseModel):
    """One *try* inside a run (retries), with the error that ended it.

    Serialised under the contract's names (``attempts`` in a run result, each
    with an ``attempt`` number); in the code a retry is a *try*, and an
    *attempt* is what the orchestrator admits (docs/architecture.md, "Vocabulary").
    """

    model_config = ConfigDict(extra="forbid")

    #: The try's number, 1-based.
    attempt: int
    status: Literal["passed", "failed"]
    started_at: str
    duration_seconds: float
    error: str | None = None


#: The pre-0.2 name of :class:`TryRecord`.
AttemptRecord = TryRecord


class RunResult(BaseModel):
    """What a ``run_executor`` returns: the contract in docs/architecture.md and README."""

    model_config = ConfigDict(extra="forbid")

    passed: bool
    run_id: str
    process: str
    #: Every try of this run, in order (the contract's field name).
    attempts: list[TryRecord] = Field(default_factory=list)
    result: ProcessResult

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
