"""Scheduler handoffs: one process's schedule as cron, Airflow, Dagster and Kubernetes.

See docs/handoff.md for what each snippet assumes and what a team still sets.
"""

from dpone_core.handoff.builder import SchedulerHandoffBuilder
from dpone_core.handoff.inputs import IMAGE_PLACEHOLDER, HandoffInputs, SchedulerHandoff
from dpone_core.handoff.names import airflow_id, kubernetes_name, python_identifier

__all__ = [
    "IMAGE_PLACEHOLDER",
    "HandoffInputs",
    "SchedulerHandoff",
    "SchedulerHandoffBuilder",
    "airflow_id",
    "kubernetes_name",
    "python_identifier",
]
