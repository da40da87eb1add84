"""A reconstructable asset job for the re-execution test (``dagster.execute_job`` needs one).

The manifest and the workspace come from the environment the test sets.
"""

import os
from pathlib import Path

import dagster as dg

from dpone_dagster import DponeResource, build_dpone_assets


def asset_job() -> dg.JobDefinition:
    root = Path(os.environ["DPONE_TEST_REEXEC_ROOT"])
    defs = dg.Definitions(
        assets=build_dpone_assets([os.environ["DPONE_TEST_REEXEC_MANIFEST"]]),
        resources={
            "dpone": DponeResource(
                lock_dir=str(root / ".dpone" / "locks"),
                state_dir=str(root / ".dpone" / "orchestration-state"),
                output_root=str(root / ".dpone" / "orchestration"),
            )
        },
        jobs=[dg.define_asset_job("dpone_all", selection=dg.AssetSelection.all())],
        executor=dg.in_process_executor,
    )
    return defs.resolve_job_def("dpone_all")
