"""Process runtime: the canonical path behind ``dpone run`` and the orchestrator."""

from dpone_core.runtime.service import RunManifestService, default_run_id

__all__ = ["RunManifestService", "default_run_id"]
