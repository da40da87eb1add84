"""Dagster integration for dpone: every manifest process as a Dagster asset.

Materializing an asset runs its process through ``dpone_core``'s
``OrchestratedRunService`` (locks, job state, resume policy, retries, evidence)
and reports the outcome as ``dpone/`` metadata. See docs/dagster.md.
"""

from dpone_dagster.checks import CHECK_NAME
from dpone_dagster.decorator import dpone_assets
from dpone_dagster.factory import build_dpone_assets
from dpone_dagster.metadata import (
    CHECK_METADATA_KEYS,
    DEFINITION_METADATA_KEYS,
    METADATA_KEYS,
    RESUME_POLICY_TAG,
)
from dpone_dagster.observe import build_dpone_observation_sensor
from dpone_dagster.process import DponeProcess
from dpone_dagster.resource import DponeResource
from dpone_dagster.specs import build_dpone_specs
from dpone_dagster.translator import DagsterDponeTranslator

__all__ = [
    "CHECK_METADATA_KEYS",
    "CHECK_NAME",
    "DEFINITION_METADATA_KEYS",
    "METADATA_KEYS",
    "RESUME_POLICY_TAG",
    "DagsterDponeTranslator",
    "DponeProcess",
    "DponeResource",
    "build_dpone_assets",
    "build_dpone_observation_sensor",
    "build_dpone_specs",
    "dpone_assets",
]
