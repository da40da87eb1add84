"""Dagster integration for dpone: every manifest process as a Dagster asset.

Materializing an asset runs its process through ``dpone_core``'s
``OrchestratedRunService`` (locks, job state, resume policy, retries, evidence)
and reports the outcome as ``dpone/`` metadata. See docs/dagster.md.
"""

from dpone_dagster.checks import CHECK_NAME
from dpone_dagster.decorator import build_dpone_specs, dpone_assets
from dpone_dagster.factory import build_dpone_assets
from dpone_dagster.metadata import METADATA_KEYS
from dpone_dagster.process import DponeProcess
from dpone_dagster.resource import RESUME_POLICY_TAG, DponeResource
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = [
    "CHECK_NAME",
    "METADATA_KEYS",
    "RESUME_POLICY_TAG",
    "DagsterDponeTranslator",
    "DponeProcess",
    "DponeResource",
    "build_dpone_assets",
    "build_dpone_specs",
    "dpone_assets",
]
