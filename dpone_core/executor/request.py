"""The request every executor receives: which process, which run, how to retry."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class RunRequest(BaseModel):
    """Input of ``RunManifestService.execute`` and of any ``run_executor``.

    ``OrchestratedRunRequest`` extends it, so an executor written for either
    accepts both. ``job_attempt`` and ``checkpoint`` are filled in by the
    orchestrator when it admits an attempt; ``env`` carries extra variables
    for command processes (for example a partition window).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    manifest_path: str
    selector: str | None = None
    run_id: str | None = None
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
