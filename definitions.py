"""The Dagster code location over the example manifests in ``manifests/``.

``dagster dev -w workspace.yaml`` loads it; so does
``dagster asset materialize -f definitions.py --select 'warehouse/landing_orders'``.
Every process of every manifest becomes an asset (see docs/dagster.md); locks,
job states and evidence live under ``.dpone/`` next to this file, shared with
``dpone orchestrate run`` started from the same directory.

Set ``DPONE_MANIFESTS`` to a directory (or ``os.pathsep``-separated manifest files)
to load other manifests, and ``DPONE_HOME`` to keep ``.dpone/`` elsewhere.

The sensor ``dpone_observation_sensor`` reports runs made outside Dagster (the CLI,
cron, Airflow) as materializations of these assets (docs/dagster-observe.md). It
starts RUNNING here, so runs made with ``dpone orchestrate run`` from this
directory appear in the asset history whenever the Dagster daemon runs
(``dagster dev`` starts one); the library's default is STOPPED.
"""

import os
from pathlib import Path

import dagster as dg

from dpone_dagster import DponeResource, build_dpone_assets, build_dpone_observation_sensor

ROOT = Path(__file__).resolve().parent
MANIFESTS = [
    Path(entry)
    for entry in os.environ.get("DPONE_MANIFESTS", str(ROOT / "manifests")).split(os.pathsep)
    if entry
]
HOME = Path(os.environ.get("DPONE_HOME", str(ROOT / ".dpone")))

ASSETS = build_dpone_assets(manifests=MANIFESTS)

defs = dg.Definitions(
    assets=ASSETS,
    sensors=[
        build_dpone_observation_sensor(ASSETS, default_status=dg.DefaultSensorStatus.RUNNING)
    ],
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
