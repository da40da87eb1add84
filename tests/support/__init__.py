"""Test helpers shared by every test package: workspaces, helper scripts, racers, backends.

The modules ``pg`` (PostgreSQL admin access) and ``backends`` (both lock and
state backends plus their fault injectors) are imported on their own, so
tests that need neither never import the driver.
"""

from tests.support.racing import race_at_once
from tests.support.workspace import (
    CLI_AT,
    EXEC_AT,
    RECORDER,
    Workspace,
    all_text_under,
    recorder_command,
)

__all__ = [
    "CLI_AT",
    "EXEC_AT",
    "RECORDER",
    "Workspace",
    "all_text_under",
    "race_at_once",
    "recorder_command",
]
