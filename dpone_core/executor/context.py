"""Everything a process kind needs to execute one try of one process."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO


@dataclass(frozen=True)
class ProcessContext:
    manifest_path: Path
    process_name: str
    run_id: str
    #: 1-based try within this run (retries); exported as DPONE_ATTEMPT to commands.
    try_number: int
    #: Admitted attempt of this run id in the job state (counts across resumes).
    job_attempt: int
    #: Restart generation of this run id; part of every transfer load id.
    generation: int
    #: Resolved connection URLs by name (secrets inside; never print them unredacted).
    connections: Mapping[str, str]
    checkpoint: Mapping[str, Any] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    window_start: str | None = None
    window_end: str | None = None
    progress: TextIO = field(default_factory=lambda: sys.stderr)

    @property
    def manifest_dir(self) -> Path:
        return self.manifest_path.parent
