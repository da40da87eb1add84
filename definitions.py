"""The Dagster code location over the example manifests in ``manifests/``.

``dagster dev -w workspace.yaml`` loads it; so does
``dagster asset materialize -f definitions.py --select 'warehouse/landing_orders'``.
Every process of every manifest becomes an asset (see docs/dagster.md); locks,
job states and evidence live under ``.dpone/`` next to this file, shared with
``dpone orchestrate run`` started from the same directory.

Set ``DPONE_MANIFESTS`` to a directory (or ``os.pathsep``-separated manifest files)
to load other manifests, and ``DPONE_HOME`` to keep ``.dpone/`` elsewhere.
"""

import os
from pathlib import Path

import dagster as dg

from dpone_dagster import DponeResource, build_dpone_assets

ROOT = Path(__file__).resolve().parent
MANIFESTS = [
    Path(entry)
    for entry in os.environ.get("DPONE_MANIFESTS", str(ROOT / "manifests")).split(os.pathsep)
    if entry
]
HOME = Path(os.environ.get("DPONE_HOME", str(ROOT / ".dpone")))

defs = dg.Definitions(
    assets=build_dpone_assets(manifests=MANIFESTS),
    resources={
        "dpone": DponeResource(
            lock_dir=str(HOME / "locks"),
            state_dir=str(HOME / "orchestration-state"),
            output_root=str(HOME / "orchestration"),
            retry_attempts=1,
            retry_backoff_seconds=1,
        )
    },
)
