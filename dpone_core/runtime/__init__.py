"""Process runtime: the canonical path behind ``dpone run`` and the orchestrator."""
