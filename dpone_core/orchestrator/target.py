"""What an invocation runs: the process, resolved from the manifest when there is one.

The default executor needs the manifest, so a missing or invalid one is a
``ManifestError`` before anything is locked. A custom ``run_executor`` may have
no manifest on disk at all (the Python API's own example): then the process is
the selector (else the manifest's file name) and the lock key falls back to the
run id, as the CLI's does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dpone_core.manifest import load_manifest

__all__ = ["ProcessTarget", "resolve_target"]


@dataclass(frozen=True)
class ProcessTarget:
    """The process one invocation runs, and what its manifest says about running it."""

    process: str
    manifest_path: str
    concurrency_key: str | None = None
    schedule: str | None = None
    #: Environment variables the manifest reads: name -> why (never a value).
    environment: dict[str, str] = field(default_factory=dict)
    from_manifest: bool = True


def resolve_target(manifest_path: str, selector: str | None, *, required: bool) -> ProcessTarget:
    """The target of ``(manifest_path, selector)``; ``required=False`` tolerates no file."""
    if not required and not os.path.lexists(manifest_path):
        stem = os.path.splitext(os.path.basename(manifest_path))[0]
        return ProcessTarget(
            process=selector or stem or manifest_path,
            manifest_path=manifest_path,
            from_manifest=False,
        )
    loaded = load_manifest(manifest_path)
    name, process = loaded.select(selector)
    return ProcessTarget(
        process=name,
        manifest_path=str(loaded.path),
        concurrency_key=process.concurrency_key,
        schedule=process.schedule,
        environment=loaded.environment_needed(),
    )
