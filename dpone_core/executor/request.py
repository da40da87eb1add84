"""The request every executor receives: which process, which run, how to retry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dpone_core.logical_run import parse_execution_date


class RunRequest(BaseModel):
    """Input of ``RunManifestService.execute`` and of any ``run_executor``.

    ``OrchestratedRunRequest`` extends it, so an executor written for either
    accepts both. ``job_attempt`` and ``checkpoint`` are filled in by the
    orchestrator when it admits an attempt; ``env`` carries extra variables
    for command processes (for example a partition window).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A ``str`` or a ``Path``; stored as ``str``.
    manifest_path: str
    selector: str | None = None
    run_id: str | None = None
    #: The logical date (``YYYY-MM-DD`` or an ISO 8601 time) the run id is derived
    #: from when ``run_id`` is not given (docs/orchestration.md, "Run ids").
    execution_date: str | None = None
    retry_attempts: int = Field(default=0, ge=0)
    retry_backoff_seconds: float = Field(default=0.0, ge=0)
    job_attempt: int = Field(default=1, ge=1)
    #: Bumped only when a run id is restarted from scratch; resume keeps it. Transfers derive
    #: their load id from (run_id, process, generation), so a resumed attempt finds its
    #: earlier load in the ledger instead of publishing it twice.
    generation: int = Field(default=1, ge=1)
    checkpoint: dict[str, Any] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    #: Optional partition/time window ``(start, end)`` in ISO-8601, applied by the process kind.
    window_start: str | None = None
    window_end: str | None = None

    @field_validator("manifest_path", mode="before")
    @classmethod
    def _path_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, Path) else value

    @field_validator("execution_date")
    @classmethod
    def _logical_date(cls, value: str | None) -> str | None:
        if value is not None:
            parse_execution_date(value)
        return value

    @model_validator(mode="after")
    def _one_way_to_name_the_run(self) -> RunRequest:
        if self.run_id is not None and self.execution_date is not None:
            raise ValueError(
                "give a run id or an execution date, not both (the run id is derived "
                "from the execution date)"
            )
        return self
