"""Per-run overrides of a dpone op, set from the launchpad or the CLI.

``dagster asset materialize --select shop/orders --config-json
'{"ops": {"dpone_shop": {"config": {"resume_policy": "resume"}}}}'`` (or the same
YAML in the launchpad) changes the resume policy of that one run. It is op
config, not resource config: the resource's own fields (where locks, states and
evidence live) stay as definitions.py set them, so an override never moves the
state to another ``.dpone/`` directory.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from dpone_core.resume import ResumePolicy

__all__ = ["RUN_CONFIG_RESUME_POLICY", "DponeRunConfig"]

#: The op config field read by :func:`dpone_dagster.invocation.resume_policy_of`.
RUN_CONFIG_RESUME_POLICY = "resume_policy"


class DponeRunConfig(dg.Config):
    """Overrides for one run of a dpone op; every field defaults to the resource's value."""

    resume_policy: ResumePolicy | None = Field(
        default=None,
        description="This run's resume policy (default: the dpone/resume_policy run tag, "
        "else the resource's resume_policy).",
    )
