"""The executor: runs one manifest process (transfer or command), with retries; no locks, no state.

The canonical path behind ``dpone run``; the orchestrator (:mod:`dpone_core.orchestrator`)
calls it once per admitted attempt. See docs/architecture.md.
"""

from dpone_core.executor.service import RunManifestService, default_run_id

__all__ = ["RunManifestService", "default_run_id"]
