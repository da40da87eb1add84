"""Compatibility name of :mod:`dpone_core.executor` (a documented import path).

``from dpone_core.runtime import RunManifestService`` keeps working (docs/orchestration.md,
"Python API"); new code imports from :mod:`dpone_core.executor`, whose name cannot be confused with
the orchestrator (:mod:`dpone_core.orchestrator`).
"""

from dpone_core.executor import RunManifestService

__all__ = ["RunManifestService"]
